"""Trained heads shared through the Hub: ``weights publish`` and ``weights download --heads``.

A heads repository holds one preset's trained pieces, as ``train all`` leaves them in its output folder:

    celeblook-heads.json                      index: preset, and every file's sha256 and size
    README.md                                 model card: training facts, eval numbers, licences
    mapper.safetensors (+ .json)              the mapper f           -> weights/<preset>/
    strength.safetensors (+ .json)            the strength head      -> weights/<preset>/
    refiner.safetensors (+ .json)             the refiner R, where the run trained one -> weights/<preset>/
    student_<variant>.safetensors (+ .json)   the student encoder    -> weights/ (untrained presets: weights/<preset>/)
    onnx/manifest.json, onnx/*.onnx           their ONNX exports     -> weights/<preset>/onnx/

A download takes every file at one commit and installs the set whole or not at all: each file is streamed
into a staging folder inside the weights dir (``hub.stream``: a name we choose, at most the size the index
declares), checked against the index's size and sha256 and for being the format its name claims, and only
when every file passed are they moved into the places above, where the pipeline reads them, the files they
replace kept aside until the last move succeeded. The repository supplies bytes and hashes, never a path:
where a file goes is decided here, and huggingface_hub's cache (whose paths come from the server's ETag and
commit) is only read, offline. ``weights/<preset>/installed-heads.json`` records the installed set (the
repository, its commit and its index): a later download of the same commit needs no index, and a head that
turns out unusable is named with the command that fetches it again (``fetch_again``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CelebError, InputError, WeightsError
from ..files import weights_dir
from ..presets import PRESETS, Preset
from ..remedy import command
from . import client as hub
from .card import model_card, read_json
from .client import ByteProgress
from .formats import format_problem

INDEX = "celeblook-heads.json"
CARD = "README.md"
HEADS_ENV = "CELEBLOOK_HEADS_REPO"
FORMAT = 1
ONNX_NAME = re.compile(r"^onnx/[A-Za-z0-9_.-]+\.(onnx|json)$")
INSTALLED = "installed-heads.json"  # in weights/<preset>/: what the last download installed
INDEX_LIMIT = 1 << 20  # bytes: an index lists a few dozen files
FILE_LIMIT = 1 << 31  # bytes: no head is larger than a protobuf (an ONNX graph without external data) can be
SHA256 = re.compile(r"[0-9a-f]{64}")
Fetch = Callable[[str, str, int, str, str], Path]  # (repo path, commit, byte limit, what sets it, label) -> staged file
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def weight_names(preset: Preset) -> list[str]:
    """The head files of a preset, with their sidecars, as named in a repository and in ``train all``'s folder."""
    student = f"student_{preset.student}"
    return [f"{stem}.{ext}" for stem in ("mapper", "strength", student) for ext in ("safetensors", "json")]


OPTIONAL_NAMES = ("refiner.safetensors", "refiner.json")  # heads a repository may hold (runs before R lack it)


def place(preset: Preset, repo_path: str) -> str:
    """Where a repository file goes, relative to the weights dir; InputError for anything unexpected."""
    if repo_path in weight_names(preset) and repo_path.startswith("student_") and preset.trained:
        return repo_path  # where the pipeline reads a trained student (celeblook.models.student.student_path)
    # an untrained preset's student stays in its folder: the file name is the timm variant's, shared with ffhq
    if repo_path in weight_names(preset) or repo_path in OPTIONAL_NAMES or ONNX_NAME.match(repo_path):
        return f"{preset.name}/{repo_path}"
    raise InputError(f"unexpected file {repo_path!r} in a heads repository")


def check_repo_id(repo: str) -> str:
    if not REPO_ID.match(repo or ""):
        raise InputError(f"a Hub repository is OWNER/NAME, got {repo!r}")
    return repo


# ---------------------------------------------------------------------------------------------------
# publish


def collect(preset: Preset, source: Path) -> list[tuple[str, Path]]:
    """(path in the repository, local file) for everything published from ``source`` (a ``train all`` folder);
    a WeightsError when something is missing or a head's sidecar names another preset (a rehearsal's, tiny's)."""
    source = Path(source)
    optional = [name for name in OPTIONAL_NAMES if (source / name).exists()]
    files = [(name, source / name) for name in [*weight_names(preset), *(OPTIONAL_NAMES if optional else ())]]
    made_for = sorted({str(read_json(path).get("provenance", {}).get("preset", preset.name))
                       for name, path in files if name.endswith(".json")} - {preset.name})
    if made_for:
        raise WeightsError(f"{source} holds heads of preset {made_for[0]!r}, not {preset.name!r}: publish the folder "
                           f"of `{command('train', 'all', '--preset', preset.name, '--out', source)}`")
    onnx = source / "onnx"
    if onnx.is_dir():
        files += [(f"onnx/{p.name}", p) for p in sorted(onnx.iterdir()) if ONNX_NAME.match(f"onnx/{p.name}")]
    missing = [name for name, path in files if not path.is_file()]
    if not (onnx / "manifest.json").is_file():
        missing.append("onnx/manifest.json (the ONNX exports)")
    if missing:
        raise WeightsError(f"{source} lacks {', '.join(missing)}; make them with "
                           f"`{command('train', 'all', '--preset', preset.name, '--out', source)}`")
    return files


def build_index(preset: Preset, files: list[tuple[str, Path]]) -> dict:
    from ..files import sha256_file

    return {
        "format": FORMAT, "preset": preset.name, "trained": preset.trained,
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {name: {"sha256": sha256_file(path), "size": path.stat().st_size} for name, path in files},
    }


def publication(repo: str, preset: Preset, source: Path) -> tuple[list[tuple[str, Path]], dict, str]:
    """What ``publish`` uploads: (the files, the index, the model card); ``train all --rehearse`` checks it."""
    files = collect(preset, Path(source))
    index = build_index(preset, files)
    return files, index, model_card(repo, preset, Path(source), index)


def publish(repo: str, preset: Preset, source: Path, private: bool = False, log: Callable[[str], None] = print) -> str:
    """Upload ``source``'s heads, their ONNX exports, the index and a model card to ``repo`` in one commit."""
    check_repo_id(repo)
    if preset.rehearsal:
        raise InputError(f"{preset.name} is a rehearsal: its heads are seeded random weights, not for publishing")
    files, index, card = publication(repo, preset, Path(source))
    uploads = [*files, (INDEX, json.dumps(index, indent=1).encode()), (CARD, card.encode())]
    total = sum(entry["size"] for entry in index["files"].values())
    log(f"publishing {len(files)} files ({total / 2**20:.1f} MB) to {repo} on {hub.endpoint()}")
    commit = hub.upload(repo, uploads, f"celeblook heads for preset {preset.name}", private)
    log(f"published {repo} at commit {commit}; fetch with `{command('weights', 'download', '--heads', repo)}`")
    return commit


# ---------------------------------------------------------------------------------------------------
# download


def heads_repo(repo: str | None) -> str:
    repo = repo or os.environ.get(HEADS_ENV, "")
    if not repo:
        raise InputError(f"name the heads repository: --heads OWNER/NAME or {HEADS_ENV}=OWNER/NAME")
    return check_repo_id(repo)


def download_heads(
    repo: str | None, preset: Preset, revision: str | None = None, root: Path | None = None,
    log: Callable[[str], None] = print, report: ByteProgress | None = None, progress: bool = True,
    cache_only: bool = False,
) -> list[Path]:
    """Fetch a heads repository's files at one commit, verified against its index, into the weights dir: all
    of them, or (on any refusal) none, the heads installed before staying as they were. Offline (or
    ``cache_only``) the files come from huggingface_hub's cache, without a request."""
    from .hashes import file_hashes, hash_file, remember
    from .weights import load_manifest, mismatch, record_hashes, refused

    repo = heads_repo(repo)
    root = root or weights_dir()
    local = cache_only or hub.offline()
    before = installed(preset, root)
    root.mkdir(parents=True, exist_ok=True)
    with _staging(root) as staging:
        fetch = _fetcher(repo, staging, local, report, progress)
        commit, index = _index(repo, revision, local, before, fetch)
        entries = index["files"]
        if index["preset"] != preset.name:
            raise WeightsError(f"{repo} holds heads for preset {index['preset']!r}, not {preset.name!r}; "
                               f"choose the preset with --preset {index['preset']}")
        wanted = [name for name in weight_names(preset) if name not in entries]
        if wanted:
            raise WeightsError(f"{repo} lacks {', '.join(wanted)}; it cannot be used as preset {preset.name!r}'s heads")
        targets = {name: root / place(preset, name) for name in entries}  # every name checked before any download
        moves, hashes = [], {}
        for name, entry in entries.items():
            dest, label = targets[name], f"{name} from {repo}"
            # a head already in place is checked through the weights dir's hash cache, not read again
            if dest.is_file() and dest.stat().st_size == entry["size"] and file_hashes(dest, root)["sha256"] == entry["sha256"]:
                staged = dest
            else:
                staged = fetch(name, commit, entry["size"], "its index declares", label)
                hashes[dest] = hash_file(staged)
                problem = mismatch(staged.stat().st_size, hashes[dest], size=entry["size"], sha256=entry["sha256"],
                                   whose="its index")
                if problem:
                    raise refused(label, problem)
                moves.append((staged, dest))
            problem = format_problem(staged)
            if problem:
                raise refused(label, f"it is {problem}")
        record = staging / INSTALLED
        record.write_text(json.dumps({"repo": repo, "commit": commit, "index": index}, indent=1))
        moves.append((record, root / preset.name / INSTALLED))
        # files of the set installed before that this one lacks go too: never a mix of two sets
        stale = [root / place(preset, name) for name in (before["index"]["files"] if before else ()) if name not in entries]
        _swap(moves, stale, staging)
    for dest, file_hash in hashes.items():
        remember(root, dest, file_hash)
    listed = {f.name for f in load_manifest(root)}
    # manifest entries (ffhq's heads) get the hash they were verified against, in one write of the manifest
    verified = {target: (entries[name]["sha256"], entries[name]["size"])
                for name, dest in targets.items() if (target := dest.relative_to(root).as_posix()) in listed}
    if verified:
        record_hashes(verified, root)
    log(f"heads for preset {preset.name} from {repo} at {commit[:12]}: {len(targets)} files verified and in place")
    return list(targets.values())


def _fetcher(repo: str, staging: Path, local: bool, report: ByteProgress | None, progress: bool) -> Fetch:
    """fetch(name, commit, limit, bound, label): the file in the staging folder, under a name of ours (its suffix kept
    for the format check); from huggingface_hub's cache when ``local``."""
    from .weights import refused

    numbers = itertools.count()

    def fetch(name: str, commit: str, limit: int, bound: str, label: str) -> Path:
        dest = staging / f"{next(numbers)}{Path(name).suffix}"
        if local:
            cached = hub.fetch(repo, name, commit, label=label, terminal=False, cache_only=True)
            if cached.stat().st_size > limit:
                raise refused(label, f"more than the {limit:,} bytes {bound}")
            shutil.copyfile(cached, dest)
        else:
            hub.stream(repo, name, commit, dest, limit, label=label, bound=bound, report=report, terminal=progress)
        return dest

    return fetch


def repo_preset(repo: str, revision: str | None = None, root: Path | None = None) -> str:
    """The name of the preset whose heads ``repo`` holds: the record of a set installed from it says (no request),
    else its index, read into a staging folder that goes with it."""
    repo = check_repo_id(repo)
    root = root or weights_dir()
    for preset in PRESETS.values():
        record = installed(preset, root)
        if record is not None and record["repo"] == repo:
            return preset.name
    root.mkdir(parents=True, exist_ok=True)
    with _staging(root) as staging:
        local = hub.offline()
        return _index(repo, revision, local, None, _fetcher(repo, staging, local, None, False))[1]["preset"]


def _index(repo: str, revision: str | None, local: bool, before: dict | None,
           fetch: Fetch) -> tuple[str, dict]:
    """(commit, index) of ``revision``: the installed set's index when that is the commit (no download)."""
    label = f"{repo} index"
    if local:
        try:
            cached = hub.fetch(repo, INDEX, revision, label=label, terminal=False, cache_only=True)
            commit = cached.parent.name  # .../snapshots/<commit>/celeblook-heads.json: the rest comes from there too
        except WeightsError:
            if before is None or before["repo"] != repo or revision not in (None, before["commit"]):
                raise
            commit = before["commit"]
    else:
        commit = hub.commit_of(repo, INDEX, revision, label=label)
    if before is not None and (before["repo"], before["commit"]) == (repo, commit):
        return commit, before["index"]
    return commit, read_index(fetch(INDEX, commit, INDEX_LIMIT, "a heads index may have", label).read_bytes(), repo)


def read_index(data: bytes, repo: str) -> dict:
    """A heads index, every field checked; one WeightsError line saying what is wrong with it."""
    try:
        index = json.loads(data)
    except ValueError as err:
        raise _malformed(repo, f"not JSON ({err})") from None
    return check_index(index, repo)


def check_index(index: object, repo: str) -> dict:
    if not isinstance(index, dict):
        raise _malformed(repo, "not a JSON object")
    if index.get("format") != FORMAT:
        raise _malformed(repo, f"format {index.get('format')!r}, where this version reads {FORMAT}")
    if not isinstance(index.get("preset"), str):
        raise _malformed(repo, "it names no preset")
    files = index.get("files")
    if not isinstance(files, dict) or not files:
        raise _malformed(repo, "'files' is not an object of file entries")
    for name, entry in files.items():
        if not isinstance(entry, dict):
            raise _malformed(repo, f"the entry of {name!r} is not an object")
        if not (isinstance(entry.get("sha256"), str) and SHA256.fullmatch(entry["sha256"])):
            raise _malformed(repo, f"{name!r} has no sha256 (64 hex digits)")
        size = entry.get("size")
        if type(size) is not int or not 0 <= size <= FILE_LIMIT:
            raise _malformed(repo, f"{name!r} has no size (a number of bytes up to {FILE_LIMIT:,})")
    return index


def _malformed(repo: str, why: str) -> WeightsError:
    return WeightsError(f"{repo}'s {INDEX} is malformed: {why}; it is not a celeblook heads repository")


def installed(preset: Preset, root: Path | None = None) -> dict | None:
    """{"repo", "commit", "index"} of the heads last installed from a repository, or None (none, or unreadable)."""
    try:
        record = json.loads(((root or weights_dir()) / preset.name / INSTALLED).read_text())
        check_repo_id(record["repo"])
        check_index(record["index"], record["repo"])
        if not hub.COMMIT_ID.fullmatch(record["commit"]):
            return None
        for name in record["index"]["files"]:
            place(preset, name)
        return record
    except (OSError, ValueError, KeyError, TypeError, CelebError):
        return None


def fetch_again(preset: Preset, path: Path) -> str | None:
    """The command that fetches ``path`` again, when the heads installed from a repository include it; else None."""
    root = weights_dir()
    record = installed(preset, root)
    if record is None or not any(os.path.abspath(root / place(preset, name)) == os.path.abspath(path)
                                 for name in record["index"]["files"]):
        return None
    return command("weights", "download", "--heads", record["repo"], "--preset", preset.name)


@contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """A folder of ours inside the weights dir (the same file system as the targets, so files move by renaming),
    removed with whatever is left in it."""
    folder = Path(tempfile.mkdtemp(prefix=".heads-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _swap(moves: list[tuple[Path, Path]], stale: list[Path], staging: Path) -> None:
    """Rename every staged file into place and remove ``stale``, the files they replace moved aside first; if any
    rename fails, the set installed before is put back."""
    aside = staging / "replaced"
    aside.mkdir()
    done: list[tuple[Path, Path | None]] = []  # (target, its old file aside, or None)
    try:
        for i, (new, dest) in enumerate([*moves, *((None, path) for path in stale)]):
            if dest.exists() or dest.is_symlink():  # a link: a file installed from huggingface_hub's cache
                os.replace(dest, aside / str(i))
                done.append((dest, aside / str(i)))
            else:
                done.append((dest, None))
            if new is not None:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(new, dest)
    except OSError as err:
        for dest, old in reversed(done):
            if old is not None:
                os.replace(old, dest)
            else:
                dest.unlink(missing_ok=True)
        raise WeightsError(f"installing the heads failed ({err.strerror or err}); the heads installed before are "
                           "back in place") from None
