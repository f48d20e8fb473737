"""Is a head file the format its name claims? Checked before it is installed or loaded, reading no more than its
header: a pickle under a .safetensors name is refused here, never unpickled, never half read."""

from __future__ import annotations

import json
import math
from pathlib import Path

DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}  # safetensors' dtypes and their sizes
HEADER_LIMIT = 100_000_000  # bytes: safetensors' own limit on its JSON header


def format_problem(path: Path) -> str | None:
    """What a head file is not, when it is not the format its name claims ("not a safetensors file (...)"), else
    None: .safetensors files have their header and its offsets checked, .json files must hold one JSON object.
    ONNX graphs are left to ONNX Runtime. Reads no more than the header."""
    try:
        if path.suffix == ".safetensors":
            why = _safetensors_problem(path)
            return why and f"not a safetensors file ({why})"
        if path.suffix == ".json":
            try:
                if not isinstance(json.loads(path.read_bytes()), dict):
                    return "not a JSON object (another JSON value)"
            except ValueError as err:
                return f"not a JSON object ({str(err).splitlines()[0]})"
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not safetensors: an 8-byte little-endian header length, a JSON header, then the tensors'
    bytes, each tensor's offsets within them and as long as its dtype and shape say."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if size < 8 or length > min(size - 8, HEADER_LIMIT):
            return f"a header of {length:,} bytes in a file of {size:,}"
        try:
            header = json.loads(f.read(length))
        except ValueError:
            return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    data, ends = size - 8 - length, [0]
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, (begin, end) = tensor["shape"], tensor["data_offsets"]
            fits = (all(type(n) is int and n >= 0 for n in [*shape, begin, end]) and 0 <= begin <= end <= data
                    and end - begin == DTYPE_BYTES[tensor["dtype"]] * math.prod(shape))
        except (KeyError, TypeError, ValueError):
            fits = False
        if not fits:
            return f"tensor {name!r} does not fit its header"
        ends.append(end)
    if max(ends) != data:
        return f"its tensors take {max(ends):,} of its {data:,} data bytes"
    return None
