"""The benchmarks' headless Chromium: Debian's system browser, each context in a fresh profile removed with it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def chromium_context(playwright, args: list[str] | None = None, **options) -> Iterator:
    """A persistent context (its own Cache Storage, as a first visit has) whose profile folder is deleted on exit:
    a profile holds the site's models, hundreds of MB a run."""
    with tempfile.TemporaryDirectory(prefix="celeblook-bench-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                                args=args or ["--no-sandbox"], **options)
        try:
            yield context
        finally:
            context.close()
