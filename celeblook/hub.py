"""The Hugging Face Hub, through ``huggingface_hub``: fetch one file into its cache, upload files as one commit.

``huggingface_hub`` does the caching (``$HF_HUB_CACHE``, shared with every other tool and with a Space's
``preload_from_hub``), resumes a dropped connection within a download, and honours offline mode. What it
does not do is check content: the callers (celeblook.weights) hash what it returns against the manifest.

Settings are read when a function is called, not at import, so a test or a caller can change them:
``HF_ENDPOINT`` (a mirror, or the local stand-in the tests run), ``HF_HUB_OFFLINE`` (cache only). Every
failure is a WeightsError of one line that says what arrived and what to do.

The endpoint is not trusted: huggingface_hub makes paths of its answers (the blob and its lock are named after
the ETag, the snapshot after X-Repo-Commit), so while we call it every answer is checked first (``_checked``):
an ETag that is not one plain file name, or a commit that is not a commit id, stops the call before anything
is written. ``stream`` does not use huggingface_hub's cache at all: it writes one file that the caller names,
and stops reading past the size the caller expects (heads, whose index declares every size).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from .errors import WeightsError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 3.0  # a reachability probe; without it a machine with no network spends ~23 s per file retrying
COMMIT_ID = re.compile(r"[0-9a-f]{40}")
FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.+=-]*")  # one path component, never "." or ".."
STREAM_CHUNK = 1 << 16

ByteProgress = Callable[[str, int, "int | None"], None]  # (what, bytes so far, total bytes or None)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the endpoint's host opens within ``timeout`` (no request is sent)."""
    url = urlsplit(endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


class _Counter:
    """Bytes that really arrived in a download, whatever happens to the progress bar."""

    def __init__(self) -> None:
        self.received = 0
        self.total: int | None = None


def _bar_class(label: str, counter: _Counter, report: ByteProgress | None, terminal: bool) -> type[tqdm]:
    """A tqdm class for huggingface_hub's ``tqdm_class``: the terminal bar, our counter and ``report``."""

    class Bar(tqdm):
        def __init__(self, *args, **kwargs) -> None:
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "desc": label, "disable": not terminal})
            counter.received, counter.total = kwargs.get("initial", 0) or 0, kwargs.get("total")
            if report is not None:
                report(label, counter.received, counter.total)

        def update(self, n: float | None = 1) -> bool | None:
            counter.received += int(n or 0)
            if report is not None:
                report(label, counter.received, counter.total)
            return super().update(n)

    return Bar


def fetch(
    repo: str, filename: str, revision: str | None = None, *, label: str | None = None,
    report: ByteProgress | None = None, terminal: bool = True, cache_only: bool = False,
) -> Path:
    """The file's path in the Hugging Face cache, downloaded first when it is not there.

    Offline (``HF_HUB_OFFLINE``) or with ``cache_only``, only the cache is read and no request is made.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    label = label or filename
    counter = _Counter()
    try:
        with _checked(repo, filename):
            return Path(hf_hub_download(
                repo, filename, revision=revision, endpoint=endpoint(), local_files_only=cache_only or offline(),
                tqdm_class=_bar_class(label, counter, report, terminal),
            ))
    except LocalEntryNotFoundError:
        if offline():
            raise WeightsError(f"{label} is not in the Hugging Face cache and offline mode is on (HF_HUB_OFFLINE); "
                               f"unset it to download {_where(repo, filename, revision)}") from None
        if cache_only:
            raise WeightsError(f"{label} is not in the Hugging Face cache") from None
        raise WeightsError(f"cannot reach {endpoint()} to download {label} ({repo}/{filename}); "
                           "check the network or HF_ENDPOINT, then run the command again") from None
    except Exception as err:
        raise _failure(err, label, repo, filename, revision, counter) from None


def _where(repo: str, filename: str, revision: str | None) -> str:
    return f"{repo}/{filename} at {revision or 'main'} on {endpoint()}"


def _failure(err: Exception, label: str, repo: str, filename: str, revision: str | None, counter: _Counter) -> Exception:
    """The one-line WeightsError for what huggingface_hub or its HTTP client raised (anything else as it is)."""
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(err, RevisionNotFoundError):
        return WeightsError(f"download of {label} failed: revision {revision or 'main'} not found in {repo} on {endpoint()}")
    if isinstance(err, (RepositoryNotFoundError, EntryNotFoundError)):
        return WeightsError(f"download of {label} failed: {_where(repo, filename, revision)} does not exist (or is private)")
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else "?"
        return WeightsError(f"download of {label} {_interrupted(counter)} (HTTP {status} from {endpoint()}); "
                            "nothing was kept, run the command again")
    if isinstance(err, (OSError, httpx2.HTTPError)):  # dropped connections past the retries, size mismatch, disk full
        return WeightsError(f"download of {label} {_interrupted(counter)} ({type(err).__name__}); "
                            "nothing was kept, run the command again")
    return err


@contextmanager
def _checked(repo: str, filename: str) -> Iterator[None]:
    """Every answer huggingface_hub's HTTP client receives meanwhile has its ETag and commit checked before
    huggingface_hub can make a path of them; a bad one is a WeightsError raised from inside the request."""
    from huggingface_hub.utils import get_session

    def check(response) -> None:
        commit = response.headers.get("X-Repo-Commit")
        if commit is not None and not COMMIT_ID.fullmatch(commit):
            raise WeightsError(f"{endpoint()} answered {commit!r} as the commit of {repo}/{filename}, which is not a "
                               "commit id; check HF_ENDPOINT")
        for header in ("X-Linked-Etag", "ETag"):
            etag = response.headers.get(header)
            # huggingface_hub's own normalisation (file_download._normalize_etag): what it would name a file
            if etag is not None and not FILE_NAME.fullmatch(etag.lstrip("W/").strip('"')):
                raise WeightsError(f"{endpoint()} answered {etag!r} as the {header} of {repo}/{filename}, which is not a "
                                   "file name; check HF_ENDPOINT")

    hooks = get_session().event_hooks["response"]
    hooks.append(check)
    try:
        yield
    finally:
        hooks.remove(check)


def commit_of(repo: str, filename: str, revision: str | None = None, *, label: str | None = None) -> str:
    """The commit id that ``revision`` (default main) names, as the Hub answers for ``filename`` (no download)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.constants import HF_HUB_ETAG_TIMEOUT

    label = label or filename
    _online(label, repo, filename, revision)
    try:
        with _checked(repo, filename):
            meta = get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision, endpoint=endpoint()),
                                        timeout=HF_HUB_ETAG_TIMEOUT)
    except Exception as err:
        raise _failure(err, label, repo, filename, revision, _Counter()) from None
    if meta.commit_hash is None:
        raise WeightsError(f"{endpoint()} gave no commit for {repo}/{filename}: it is not a Hugging Face Hub endpoint; "
                           "check HF_ENDPOINT")
    return meta.commit_hash


def stream(
    repo: str, filename: str, commit: str, dest: Path, limit: int, *, label: str, bound: str,
    report: ByteProgress | None = None, terminal: bool = True,
) -> int:
    """Download ``filename`` at ``commit`` into ``dest`` (a new file); returns its size. At most ``limit`` bytes:
    past them it stops reading at once and refuses, saying "more than the LIMIT bytes {bound}" (e.g. "its index
    declares"). No cache, no resume: a failure leaves no ``dest``."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.constants import HF_HUB_DOWNLOAD_TIMEOUT
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    if not COMMIT_ID.fullmatch(commit):
        raise WeightsError(f"{commit!r} is not a commit id")
    _online(label, repo, filename, commit)
    counter = _Counter()
    too_long = WeightsError(f"download of {label} refused: more than the {limit:,} bytes {bound}; "
                            "nothing was kept, run the command again")
    url = hf_hub_url(repo, filename, revision=commit, endpoint=endpoint())
    # the bytes as stored (no compression): the limit and the sha256 apply to what arrives, and nothing is inflated
    headers = {**build_hf_headers(), "Accept-Encoding": "identity"}
    out = open(dest, "xb")  # a new file, so that a failure removes only what this call wrote
    try:
        with (out, _checked(repo, filename),
              get_session().stream("GET", url, headers=headers, timeout=HF_HUB_DOWNLOAD_TIMEOUT) as response):
            hf_raise_for_status(response)
            length = response.headers.get("Content-Length", "")
            counter.total = int(length) if length.isdigit() else None
            if counter.total is not None and counter.total > limit:
                raise too_long  # announced: nothing is read
            with tqdm(total=counter.total, unit="B", unit_scale=True, desc=label, disable=not terminal, leave=False) as bar:
                for block in response.iter_raw(STREAM_CHUNK):
                    counter.received += len(block)
                    if counter.received > limit:
                        raise too_long  # the response closes here: no more is read
                    out.write(block)
                    bar.update(len(block))
                    if report is not None:
                        report(label, counter.received, counter.total)
    except BaseException as err:
        dest.unlink(missing_ok=True)
        if isinstance(err, Exception):
            raise _failure(err, label, repo, filename, commit, counter) from None
        raise
    return counter.received


def _online(label: str, repo: str, filename: str, revision: str | None) -> None:
    if offline():
        raise WeightsError(f"offline mode is on (HF_HUB_OFFLINE): unset it to download {label} "
                           f"({_where(repo, filename, revision)})")


def _interrupted(counter: _Counter) -> str:
    if counter.total:
        return f"interrupted after {counter.received:,} of {counter.total:,} bytes"
    return f"interrupted after {counter.received:,} bytes"


def forget(cached: Path) -> None:
    """Remove a file fetched into the cache (its snapshot entry and its blob), so the next fetch downloads it."""
    blob = Path(os.path.realpath(cached))
    for path in (cached, blob):
        path.unlink(missing_ok=True)


def etag_sha256(cached: Path) -> str | None:
    """The sha256 the Hub announced for a cached LFS file: huggingface_hub names the blob after it."""
    name = Path(os.path.realpath(cached)).name
    return name if len(name) == 64 and all(c in "0123456789abcdef" for c in name) else None


def upload(repo: str, files: Sequence[tuple[str, Path | bytes]], message: str, private: bool = False) -> str:
    """Create ``repo`` (a model repo) if needed and commit ``files`` (path in repo, local file or bytes) to
    main in one commit; returns the commit's id. Authentication is huggingface_hub's own (``hf auth login``
    or ``HF_TOKEN``)."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if offline():
        raise WeightsError("cannot publish while offline mode is on (HF_HUB_OFFLINE); unset it first")
    api = HfApi(endpoint=endpoint())
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(src) if isinstance(src, Path) else src)
                      for name, src in files]
        return api.create_commit(repo, operations, commit_message=message).oid
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        hint = " (log in with `hf auth login` or set HF_TOKEN)" if status in (401, 403) else ""
        raise WeightsError(f"publishing to {repo} on {endpoint()} failed: HTTP {status}{hint}") from None
    except OSError as err:
        raise WeightsError(f"publishing to {repo} on {endpoint()} failed: {err}") from None
