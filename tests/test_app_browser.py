"""A real headless Chromium clicks through every tab of the launched app (tiny preset): uploads a photo,
inverts it, edits it into a C-sweep GIF, morphs it, makes random and text faces; every screenshot must
show something (pixel spread), not a blank page.

Set CELEBLOOK_UPDATE_SCREENSHOT=1 to also write the Invert tab's screenshot to docs/screenshot.png.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

os.environ["CELEBLOOK_PRESET"] = "tiny"

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (Debian package 'chromium'); browser tests skipped", allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

import app  # noqa: E402
from net import free_port
from synthetic_face import wild_photo  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 90_000
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def page():
    _, url, _ = app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1400, "height": 1000}
        )
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Untrained").first.wait_for()
        yield page
        context.close()
    app.demo.close()


def shot(page, path: Path) -> np.ndarray:
    """Screenshot the page; a blank page has a pixel std near 0, a text-only tab ~20, tabs with images 40+."""
    png = page.screenshot(path=str(path), full_page=True)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert pixels.std() > 8, f"{path.name} looks blank (pixel std {pixels.std():.1f})"
    return pixels


def open_tab(page, name: str):
    page.get_by_role("tab", name=name, exact=True).click()


def test_click_through_every_tab(page, tmp_path):
    photo = tmp_path / "me.png"
    wild_photo(8.0)[0].save(photo)

    # Invert: upload, run, see the reconstruction
    page.locator("#tab-invert input[type=file]").first.set_input_files(str(photo))
    page.get_by_role("button", name="Invert", exact=True).click()
    page.locator("#invert-result img").wait_for()
    shot(page, tmp_path / "invert.png")
    if os.environ.get("CELEBLOOK_UPDATE_SCREENSHOT"):
        page.screenshot(path=str(REPO / "docs" / "screenshot.png"))

    # Edit the face just inverted: a C-sweep GIF appears, animated in the page
    open_tab(page, "Edit")
    tab = page.locator("#tab-edit")
    tab.get_by_label("last face").check()
    tab.get_by_label("Target prompt").fill("a face with a big smile")
    tab.get_by_role("button", name="Edit", exact=True).click()
    page.locator("#edit-gif img[src*='.gif']").wait_for()
    page.wait_for_timeout(500)  # let the GIF's first frames paint
    shot(page, tmp_path / "edit.png")

    # Morph the last face with a celebrity prompt
    open_tab(page, "Morph")
    tab = page.locator("#tab-morph")
    tab.get_by_label("last face").check()
    tab.get_by_label("prompt", exact=True).check()
    tab.get_by_label("…or a celebrity prompt").fill("a famous actress")
    tab.get_by_role("button", name="Morph", exact=True).click()
    page.locator("#morph-gif img[src*='.gif']").wait_for()
    shot(page, tmp_path / "morph.png")

    open_tab(page, "Random")
    page.get_by_role("button", name="Random faces", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('#random-gallery img').length >= 4")
    shot(page, tmp_path / "random.png")

    open_tab(page, "Text to face")
    page.get_by_label("Prompt", exact=True).fill("an old man with a grey beard")
    page.get_by_role("button", name="Make face", exact=True).click()
    page.locator("#text-result img").wait_for()
    shot(page, tmp_path / "text.png")

    open_tab(page, "Status")
    page.locator("#tab-status").get_by_text("Run on your device").wait_for()
    assert page.locator("#tab-status a", has_text="In the browser").get_attribute("href").endswith("#in-the-browser")
    shot(page, tmp_path / "status.png")
