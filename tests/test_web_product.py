"""The page as a product (issue 21), in headless Chromium on the tiny preset's site (built as tests/test_web.py
builds it): photos in by drop, paste and a camera whose coach reads the face landmarks before the shot.

The camera is Chromium's fake capture device playing a Y4M file made here from a real photo (scikit-image's
public-domain astronaut, cropped around the face), so the coach, the shot and the inversion run on a real face.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from camera_video import y4m
from PIL import Image
from test_web import CHROMIUM, HELPERS, astronaut, rgba_b64, space, url, wait_done  # noqa: F401 (fixtures)

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

# the astronaut's face (eyes near (203, 101) and (246, 104)) in the middle of a 240 px square
FACE_CROP = (105, 5, 345, 245)

# every getUserMedia stream the page opens, so a test can see whether its tracks were stopped
STREAMS = """
const open = navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
window.__streams = [];
if (open) navigator.mediaDevices.getUserMedia = async (c) => { const s = await open(c); window.__streams.push(s); return s; };
window.__live = () => window.__streams.flatMap((s) => s.getTracks()).filter((t) => t.readyState === 'live').length;
"""


def face_crop() -> np.ndarray:
    x0, y0, x1, y1 = FACE_CROP
    return astronaut()[y0:y1, x0:x1]


@pytest.fixture(scope="module")
def playwright():  # one per module: a second sync_playwright() inside the first is refused
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    video = tmp_path_factory.mktemp("camera") / "face.y4m"
    video.write_bytes(y4m(face_crop()))
    args = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]
    context = playwright.chromium.launch_persistent_context(tmp_path_factory.mktemp("profile"), executable_path=CHROMIUM,
                                                            headless=True, args=args, permissions=["camera"])
    context.add_init_script(HELPERS + STREAMS)
    yield context
    context.close()


@pytest.fixture
def page(browser, url):  # noqa: F811
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}?backend=wasm")
    page.evaluate("window.celeblook.ready")
    page.select_option("#size", "256")
    yield page
    assert not errors, errors
    page.close()


def png_b64(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# builds a File of the PNG in the page and hands it over as a browser would: a drop on the drop zone, a paste
HAND_OVER = """async ([how, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], 'astronaut.png', {type: 'image/png'}));
  if (how === 'drop') {
    const zone = document.getElementById('drop');
    zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
    zone.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
  } else {
    document.body.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
  }
}"""


@pytest.mark.parametrize("how", ["drop", "paste"])
def test_a_dropped_or_pasted_photo_is_inverted(page, how):
    page.evaluate(HAND_OVER, [how, png_b64(astronaut())])
    wait_done(page, "Photo")
    assert page.locator("#faces button").count() == 1 and page.is_visible("#original-card")
    assert "similarity to the photo" in page.text_content("#face-scores")


def test_faces_are_numbered_from_0_and_the_identity_distance_is_shown(page):
    """Face 0 is the largest, as in the app and the CLI; after an inversion the result panel gives the identity
    distance between the photo's face and the reconstruction (the tiny preset's is a pattern: no face in it)."""
    from real_photos import group_photo

    page.evaluate(HAND_OVER, ["drop", png_b64(np.asarray(group_photo()))])
    wait_done(page, "Photo")
    assert [b.get_attribute("title") for b in page.locator("#faces button").all()] == ["face 0", "face 1"]
    assert "2 faces found; face 0 used" in page.text_content("#result > .notes")  # the notes sit with the result
    page.locator("#faces button").nth(1).click()
    wait_done(page, "Inversion")
    assert "2 faces found; face 1 used" in page.text_content("#result > .notes")  # the notes sit with the result
    assert page.locator("#faces button").nth(1).get_attribute("aria-pressed") == "true"
    ends_with(page, "face-scores", "; identity distance: not measured (no face found in the result)")  # filled in when measured


def test_the_refiner_control_shows_the_refiners_count_and_a_new_count_redoes_the_inversion(page):
    """A site with refiner.onnx offers its iterations next to the photo (the schema's label and range, the refiner's
    own count); 0 redoes the inversion from the mapper alone."""
    box = page.locator("#refine-iterations")
    assert box.is_visible() and box.input_value() == "2" and (box.get_attribute("min"), box.get_attribute("max")) == ("0", "8")
    assert page.text_content("#refine-box").startswith("Refiner iterations (0 = the mapper alone)")
    page.evaluate(HAND_OVER, ["drop", png_b64(astronaut())])
    wait_done(page, "Photo")
    assert "refined by the learned refiner: 2 iterations" in page.text_content("#result > .notes")
    box.fill("0")
    box.dispatch_event("change")
    wait_done(page, "Inversion")
    assert "refined by the learned refiner" not in page.text_content("#result > .notes")


def test_pasted_text_is_left_to_the_prompt_box(page):
    page.focus("#prompt")
    page.evaluate("""() => { const data = new DataTransfer(); data.setData('text/plain', 'x');
        document.getElementById('prompt').dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true})); }""")
    assert page.text_content("#status").startswith("Ready")


COACH = """async ([b64, w, h, nudge]) => {
  const {coach} = await import('./src/coach.js');
  const image = window.__img(b64, w, h);
  const {faces} = await window.celeblook.align(image);
  const face = faces[0] && nudge ? {...faces[0], landmarks: faces[0].landmarks.map((p, i) => (i === 30 ? [p[0] + nudge, p[1]] : p))}
    : faces[0];
  return coach(face, image);
}"""


def test_the_coach_says_what_to_change_before_the_shot(page):
    crop = face_crop()
    tilted = np.asarray(Image.fromarray(crop).rotate(20, resample=Image.BICUBIC, fillcolor=(128, 128, 128)))
    cases = {
        "Good": crop,
        "Too far": astronaut(),  # the face is small and high in the full photo
        "Tilted": tilted,
        "Too dark": (crop * 0.35).astype(np.uint8),
    }
    for expected, rgb in cases.items():
        advice = page.evaluate(COACH, [*rgba_b64(rgb), 0])
        assert any(a.startswith(expected) for a in advice["advice"]), (expected, advice)
        assert advice["ready"] == (expected == "Good"), (expected, advice)
    assert "Off centre: move your face to the middle." in page.evaluate(COACH, [*rgba_b64(astronaut()), 0])["advice"]
    # the nose tip a third of the eye distance (~43 px in 240) to the side: the head is turned
    turned = page.evaluate(COACH, [*rgba_b64(crop), 15])
    assert turned == {"ready": False, "advice": ["Turned: look straight at the camera."]}
    blank = np.full((240, 240, 3), 128, np.uint8)
    assert page.evaluate(COACH, [*rgba_b64(blank), 0])["advice"] == ["No face in view: look at the camera."]


def test_camera_coach_then_shot_inverts_and_releases_the_camera(page):
    page.click("#camera")
    page.wait_for_function("document.getElementById('coach').dataset.ready === 'true'", timeout=60_000)
    assert page.text_content("#coach") == "Good: take the photo." and page.evaluate("window.__live()") == 1
    page.click("#shot")
    assert page.evaluate("window.__live()") == 0 and page.is_hidden("#camera-box")
    wait_done(page, "Photo")
    assert page.locator("#faces button").count() == 1
    assert "similarity to the photo" in page.text_content("#face-scores")


def test_stopping_or_leaving_releases_the_camera(page, url):  # noqa: F811
    page.click("#camera")
    page.wait_for_function("window.__live() === 1")
    page.click("#camera-stop")
    assert page.evaluate("window.__live()") == 0 and page.is_hidden("#camera-box") and page.is_visible("#camera")
    page.click("#camera")
    page.wait_for_function("window.__live() === 1")
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pagehide'))")
    assert page.evaluate("window.__live()") == 0


def test_before_after_slider_moves_with_the_arrow_keys(page):
    assert page.is_hidden("#compare")  # no photo yet: nothing to compare
    page.evaluate(HAND_OVER, ["drop", png_b64(astronaut())])
    wait_done(page, "Photo")
    compare = page.locator(".compare")
    page.focus("#compare")
    page.keyboard.press("End")  # all photo
    photo = np.asarray(Image.open(io.BytesIO(compare.screenshot())).convert("RGB"), np.float32)
    page.keyboard.press("Home")  # all result
    result = np.asarray(Image.open(io.BytesIO(compare.screenshot())).convert("RGB"), np.float32)
    assert np.abs(photo - result).mean() > 10  # the tiny preset's result is a pattern, far from the photo
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    assert page.input_value("#compare") == "50"
    half = np.asarray(Image.open(io.BytesIO(compare.screenshot())).convert("RGB"), np.float32)
    w = half.shape[1]
    left, right = slice(0, w // 2 - 2), slice(w // 2 + 2, w)
    assert np.abs(half[:, left] - photo[:, left]).mean() < 1 and np.abs(half[:, right] - result[:, right]).mean() < 1


def test_share_falls_back_to_a_download_without_web_share(page):
    assert page.evaluate("navigator.canShare === undefined")  # headless Chromium on Linux: no Web Share
    page.fill("#seed", "3")
    page.click("#random")
    wait_done(page, "Random face")
    with page.expect_download() as download:
        page.click("#share")
    assert download.value.suggested_filename == "celeblook.png"
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.wait_for_function("document.getElementById('status').textContent === 'Share: downloaded'")
    with pytest.raises(Exception, match="share needs"):
        page.evaluate("window.celeblook.share({bytes: new Uint8Array(1)})")


# a browser that can share files: records what the page hands the share sheet
WEB_SHARE = """navigator.canShare = (data) => Array.isArray(data.files);
navigator.share = async (data) => { const f = data.files[0];
  window.__shared = {name: f.name, type: f.type, head: [...new Uint8Array(await f.arrayBuffer()).slice(0, 4)]}; };"""


def test_share_hands_the_png_to_web_share_where_the_browser_has_it(page):
    page.evaluate(f"() => {{ {WEB_SHARE} }}")
    page.click("#random")
    wait_done(page, "Random face")
    page.click("#share")
    page.wait_for_function("document.getElementById('status').textContent === 'Share: shared'")
    assert page.evaluate("window.__shared") == {"name": "celeblook.png", "type": "image/png", "head": [0x89, 0x50, 0x4E, 0x47]}
    assert page.evaluate("window.celeblook.share({bytes: new Uint8Array([1]), mime: 'text/plain', name: 'a.txt'})") == "shared"


# --- offline ---------------------------------------------------------------------------------------------------

MAKE_FACE = """async () => { const cl = await window.celeblook.ready; const r = await cl.randomLatent(5);
    return (await cl.render(r.wplus, 1, 256)).length; }"""
IDENTITY = """async ([a, b]) => (await window.celeblook.ready).identity(window.__img(...a), window.__img(...b))"""


def test_a_returning_visitor_makes_faces_offline_and_nothing_leaves_the_site(playwright, url, tmp_path):  # noqa: F811
    requests: list[tuple[str, str]] = []
    context = playwright.chromium.launch_persistent_context(tmp_path / "profile", executable_path=CHROMIUM, headless=True,
                                                   args=["--no-sandbox"])
    context.add_init_script(HELPERS)
    faces = [rgba_b64(astronaut()), rgba_b64(astronaut()[:, ::-1].copy())]
    try:
        context.on("request", lambda r: requests.append((r.method, r.url)))
        page = context.new_page()
        page.goto(f"{url}?backend=wasm")
        page.evaluate("window.celeblook.ready")
        page.select_option("#size", "256")
        page.click("#random")
        wait_done(page, "Random face")
        # kept once after start, once after the face: the runtime loaded for the face is kept too
        page.wait_for_function("Number(document.getElementById('offline').dataset.kept) >= 2", timeout=60_000)
        online = page.evaluate(IDENTITY, faces)  # the recognition net, fetched when first used, is kept too
        context.set_offline(True)
        page.reload()
        assert page.evaluate("window.crossOriginIsolated")  # the cached page keeps its COOP/COEP headers
        assert page.evaluate(MAKE_FACE) == 3 * 256 * 256
        assert page.evaluate(IDENTITY, faces) == online and online["sameperson"] is True
        page.close()
    finally:
        context.close()
    assert requests
    outside = [(m, u) for m, u in requests if m != "GET" or not (u.startswith(url) or u.startswith(("blob:", "data:")))]
    assert not outside, outside  # "nothing is uploaded": only GETs of the site's own files


# --- messages in place, accessibility (issue 21) -----------------------------------------------------------------------

AXE = Path(__file__).resolve().parents[1] / "web" / "node_modules" / "axe-core" / "axe.min.js"  # a dev dependency
# the serious and critical violations of the whole page: [[rule, element, summary], ...]
AXE_RUN = """async () => {
  const {violations} = await axe.run(document, {resultTypes: ['violations']});
  return violations.filter((v) => ['serious', 'critical'].includes(v.impact))
    .flatMap((v) => v.nodes.map((n) => [v.id, n.target.join(' '), n.failureSummary]));
}"""


def below(page, control: str, element: str) -> float:
    """How far ``element`` starts under ``control`` (CSS selectors; px, negative: above it)."""
    return page.evaluate("""([a, b]) => document.querySelector(b).getBoundingClientRect().top
        - document.querySelector(a).getBoundingClientRect().bottom""", [control, element])


def test_an_error_shows_under_the_button_that_caused_it(page):
    """Issue 21: on a phone an error appeared in the header, 738 px above the button that caused it."""
    page.click("#morph")  # no face yet
    error = page.locator("#morph-box .error[role=alert]")
    error.wait_for()
    assert "make or upload a face first" in error.text_content()
    assert 0 <= below(page, "#morph", "#morph-box .error") < 40
    page.click("#random")  # the next action replaces it
    wait_done(page, "Random face")
    assert page.locator("main .error").count() == 0


def test_an_actions_notes_sit_under_its_result(page):
    """Issue 21: notes were appended to the header's status line, a screen away from the result on a phone."""
    page.click("#random")
    wait_done(page, "Random face")
    page.fill("#sweep-frames", "2")
    page.click("#sweep")
    wait_done(page, "C-sweep GIF")
    notes = page.locator("#sweep-card > .notes")
    assert " MB" in notes.text_content() and notes.is_visible()
    assert 0 <= below(page, "#sweep-card figcaption", "#sweep-card > .notes") < 40  # right under the GIF's caption
    assert " MB" not in page.text_content("#status")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)], ids=["desktop", "phone"])
def test_axe_finds_no_serious_violation(page, width, height, scheme, tmp_path):
    """Every control labelled and keyboard-operable, text readable (contrast) in light and dark, at desktop and
    phone size, with a result, its notes and an error on show; nothing wider than the screen."""
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run npm ci in web/")
    page.set_viewport_size({"width": width, "height": height})
    page.emulate_media(color_scheme=scheme)
    page.click("#random")
    wait_done(page, "Random face")
    page.click("#morph")  # nothing kept: an error under the button
    page.locator("#morph-box .error").wait_for()
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(AXE_RUN) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(tmp_path / f"page-{width}-{scheme}.png"), full_page=True)


def test_the_keyboard_alone_makes_a_face(page):
    page.focus("#seed")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "random"
    page.keyboard.press("Enter")
    wait_done(page, "Random face")
    assert "seed 0" in page.text_content("#face-scores")


# holds every identity measurement of the page until the test lets it go: shows what the page does meanwhile;
# RELEASE resolves once the measurements let go have ended (and the page has had a moment to show them)
HOLD_IDENTITY = """() => { const cl = window.celeblook; const real = cl.identity; window.__held = [];
  cl.identity = (a, b) => new Promise((resolve) => {
    window.__held.push(async () => { const measured = real(a, b); resolve(measured); await measured.catch(() => null); }); }); }"""
RELEASE = """async () => { await Promise.all(window.__held.splice(0).map((go) => go()));
  await new Promise((resolve) => setTimeout(resolve, 200)); }"""
NO_FACE = "identity distance: not measured (no face found in the result)"


def ends_with(page, element: str, text: str) -> None:
    page.wait_for_function("([id, text]) => document.getElementById(id).textContent.endsWith(text)", arg=[element, text])


def test_the_identity_line_fills_in_after_the_result_and_after_an_edit_of_a_photo(page):
    """Issue 21: the page measured the identity only after Invert, and the action waited for it; the Gradio app
    gives it for the edit's variants of a photo too. The result shows first; a later action is not held up, and
    an earlier face's line does not overwrite a later face's caption."""
    page.evaluate(HOLD_IDENTITY)
    page.evaluate(HAND_OVER, ["drop", png_b64(astronaut())])
    wait_done(page, "Photo")  # while the identity is still being measured
    caption = page.text_content("#face-scores")
    assert caption.startswith("Inversion: similarity to the photo") and "identity" not in caption
    page.evaluate(RELEASE)
    ends_with(page, "face-scores", f"; {NO_FACE}")

    page.fill("#target", "a face with glasses")
    page.click("#edit")
    wait_done(page, "Edit")
    manual = page.text_content("#manual-scores")
    assert manual.startswith("Manual C = ") and "identity" not in manual
    page.evaluate(RELEASE)
    ends_with(page, "manual-scores", f"; {NO_FACE}")  # the same line as after an inversion

    page.locator("#faces button").first.click()  # the photo's face again: its identity held ...
    wait_done(page, "Inversion")
    page.click("#random")  # ... while a random face replaces it
    wait_done(page, "Random face")
    page.evaluate(RELEASE)
    caption = page.text_content("#face-scores")
    assert caption.startswith("Random face") and "identity" not in caption, caption
    page.click("#edit")  # an edit of a random face: no photo, no identity line
    wait_done(page, "Edit")
    assert page.evaluate("window.__held.length") == 0 and "identity" not in page.text_content("#manual-scores")


def test_the_page_controls_follow_the_request_schema(page):
    """Issue 21: one schema (celeblook.pipeline.requests, in site.json) gives the app's, the CLI's and the page's
    controls their labels, help and ranges."""
    from celeblook.web.build import app_limits

    schema = app_limits()["requests"]
    for control, verb, field in [("#sweep-frames", "sweep", "n_frames"), ("#sweep-cmax", "sweep", "c_max"),
                                 ("#frames", "morph", "n_frames"), ("#seed", "random_faces", "seed"),
                                 ("#text-seed", "text_to_face", "seed"), ("#psi", "random_faces", "psi")]:
        f = schema[verb][field]
        got = page.eval_on_selector(control, "(e) => [Number(e.min), Number(e.max), e.title, e.closest('label').textContent]")
        assert got[:3] == [f["low"], f["high"], f["help"]], (control, got, f)
        assert got[3].strip().startswith(f["label"]), (control, got[3], f["label"])
    for control, verb, field in [("#target", "edit", "target"), ("#source", "edit", "source")]:
        f = schema[verb][field]
        assert page.get_by_label(f["label"], exact=True).get_attribute("id") == control[1:]
        assert page.get_attribute(control, "title") == f["help"]
