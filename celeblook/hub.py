"""The Hugging Face Hub, through ``huggingface_hub``: fetch one file into its cache, upload files as one commit.

``huggingface_hub`` does the caching (``$HF_HUB_CACHE``, shared with every other tool and with a Space's
``preload_from_hub``), resumes a dropped connection within a download, and honours offline mode. What it
does not do is check content: the callers (celeblook.weights) hash what it returns against the manifest.

Settings are read when a function is called, not at import, so a test or a caller can change them:
``HF_ENDPOINT`` (a mirror, or the local stand-in the tests run), ``HF_HUB_OFFLINE`` (cache only). Every
failure is a WeightsError of one line that says what arrived and what to do.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from .errors import WeightsError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 3.0  # a reachability probe; without it a machine with no network spends ~23 s per file retrying

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
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    label = label or filename
    where = f"{repo}/{filename} at {revision or 'main'} on {endpoint()}"
    counter = _Counter()
    try:
        return Path(hf_hub_download(
            repo, filename, revision=revision, endpoint=endpoint(), local_files_only=cache_only or offline(),
            tqdm_class=_bar_class(label, counter, report, terminal),
        ))
    except LocalEntryNotFoundError:
        if offline():
            raise WeightsError(f"{label} is not in the Hugging Face cache and offline mode is on (HF_HUB_OFFLINE); "
                               f"unset it to download {where}") from None
        if cache_only:
            raise WeightsError(f"{label} is not in the Hugging Face cache") from None
        raise WeightsError(f"cannot reach {endpoint()} to download {label} ({repo}/{filename}); "
                           "check the network or HF_ENDPOINT, then run the command again") from None
    except RevisionNotFoundError:
        raise WeightsError(f"download of {label} failed: revision {revision or 'main'} not found in {repo} on {endpoint()}") from None
    except (RepositoryNotFoundError, EntryNotFoundError):
        raise WeightsError(f"download of {label} failed: {where} does not exist (or is private)") from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        raise WeightsError(f"download of {label} {_interrupted(counter)} (HTTP {status} from {endpoint()}); "
                           "nothing was kept, run the command again") from None
    except (OSError, httpx2.HTTPError) as err:  # dropped connections past the retries, size mismatch, disk full
        raise WeightsError(f"download of {label} {_interrupted(counter)} ({type(err).__name__}); "
                           "nothing was kept, run the command again") from None


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
