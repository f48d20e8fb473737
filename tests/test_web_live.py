"""Live mode in the page (issue 22), in headless Chromium on the tiny preset's site (built as tests/test_web.py
builds it), with Chromium's fake camera playing a Y4M made here from two real people (scikit-image's astronaut and
matplotlib's Grace Hopper, both public domain) in turn: each still, then shifted and rolled. A marker block in the
frame's corners says who is in view and whether the frame moves, so the test reads what the camera showed from
the very frame each result was made from (the composite canvas, with the face pasted back, shows that frame).
"""

from __future__ import annotations

import numpy as np
import pytest
from camera_video import two_people_y4m
from test_web import CHROMIUM, HELPERS, space, url  # noqa: F401 (fixtures)
from test_web_product import STREAMS, WEB_SHARE

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    camera = tmp_path_factory.mktemp("camera") / "two_people.y4m"
    camera.write_bytes(two_people_y4m())
    args = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"]
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(tmp_path_factory.mktemp("profile"), executable_path=CHROMIUM, headless=True,
                                                       args=args, permissions=["camera"])
        context.add_init_script(HELPERS + STREAMS + LONG_TASKS)
        yield context
        context.close()


LONG_TASKS = """window.__longTasks = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
  .observe({type: 'longtask'});"""


@pytest.fixture
def page(browser, url):  # noqa: F811
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}?backend=wasm")
    page.evaluate("window.celeblook.ready")
    yield page
    assert not errors, errors
    page.close()


# live for ``seconds`` through the API; each result's latent with who was in view and whether the frame moved
RUN = """async ([seconds, options]) => {
  const cl = await window.celeblook.ready;
  const results = [];
  let composite = null;
  const onResult = (r) => {
    if (!r.found) return;
    const pixels = (x) => composite.getContext('2d').getImageData(x, 2, 1, 1).data[0];
    results.push({who: pixels(2) > 128 ? 1 : 0, moving: pixels(composite.width - 3) > 128, wplus: Float32Array.from(r.wplus),
      detected: r.detected});
  };
  const started = await cl.live.start({size: 256, pasteBack: true, onResult, ...options});
  composite = started.composite;
  window.__longTasks.length = 0;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const stats = cl.live.stats();
  const longest = Math.max(0, ...window.__longTasks);
  const liveTracks = window.__live();
  await cl.live.stop();
  const dist = (a, b) => { let s = 0; for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2; return Math.sqrt(s / a.length); };
  // a still stretch: consecutive results of the same person, neither moving, after the first 4 of the stretch
  const steps = [];
  const settled = results.map((r, i) => i >= 4 && results.slice(i - 4, i + 1).every((q) => q.who === r.who && !q.moving));
  for (let i = 1; i < results.length; i++) if (settled[i] && settled[i - 1]) steps.push(dist(results[i].wplus, results[i - 1].wplus));
  const mean = (who) => { const own = results.filter((r, i) => r.who === who && settled[i]);
    if (!own.length) return null; const m = new Float32Array(own[0].wplus.length);
    for (const r of own) r.wplus.forEach((v, i) => { m[i] += v / own.length; }); return m; };
  const [a, b] = [mean(0), mean(1)];
  return {stats, longest, liveTracks, tracksAfterStop: window.__live(), results: results.length,
    people: [...new Set(results.map((r) => r.who))], detections: results.filter((r) => r.detected).length,
    stillSteps: steps, between: a && b ? dist(a, b) : null};
}"""


def test_live_follows_the_face_and_stops_the_camera(page):
    got = page.evaluate(RUN, [16, {}])
    stats = got["stats"]
    assert stats["frames"] >= 20, stats
    assert got["results"] >= 20 and got["people"] == [0, 1], got  # both people went through
    # stats are sane: rates and times positive and consistent with each other
    assert 0 < stats["fps"] < 60 and stats["dropped"] >= 0, stats
    stages = stats["stages"]
    assert set(stages) == {"track", "crop", "encode", "map", "edit", "synth", "paste"}, stages
    assert all(v is not None and v >= 0 for v in stages.values()), stages
    assert stages["synth"] > 0 and stages["encode"] > 0 and stages["track"] > 0
    assert sum(stages.values()) <= stats["latencyMs"] * 1.5 + 5, stats
    # the detector ran at the start and when the face changed, the landmarks followed the rest
    assert 1 <= got["detections"] < got["results"] / 2, got
    # the result follows the input: the two people's latents differ by far more than a still face's steps
    steps = got["stillSteps"]
    assert len(steps) >= 4 and got["between"] is not None, got
    # (a re-detection now and then moves the crop a little: the largest step stays well under the change of person)
    assert np.median(steps) < 0.01 * got["between"] and max(steps) < 0.2 * got["between"], (steps, got)
    assert got["liveTracks"] == 1 and got["tracksAfterStop"] == 0  # stop ends the camera track
    assert got["longest"] <= 100, got["longest"]  # no main-thread task over 100 ms while live


def test_without_smoothing_a_still_face_still_jitters_less_than_the_change_of_person(page):
    """Smoothing off gives each frame's own latent: the result still follows who is in view."""
    got = page.evaluate(RUN, [16, {"smoothing": False}])
    assert got["people"] == [0, 1] and got["between"] is not None, got
    assert got["tracksAfterStop"] == 0


def test_live_edit_and_morph_change_the_result_and_bad_options_are_refused(page):
    got = page.evaluate("""async () => {
      const cl = await window.celeblook.ready;
      const kept = (await cl.randomLatent(4, 0.7)).wplus;
      const run = async (options) => {
        const seen = [];
        await cl.live.start({size: 256, smoothing: false, onResult: (r) => { if (r.found) seen.push(r); }, ...options});
        const began = performance.now();
        await new Promise((resolve, reject) => { const t = setInterval(() => {
          if (seen.length >= 3) { clearInterval(t); resolve(); }
          if (performance.now() - began > 60000) { clearInterval(t); reject(new Error('no face in 60 s')); } }, 50); });
        await cl.live.stop();
        return seen[seen.length - 1];
      };
      const morphed = await run({morph: {towards: kept, t: 1}});
      const edited = await run({edit: {target: 'a person with blonde hair', strength: 0.8}});
      await cl.live.start({size: 256});
      const clip = await cl.live.record(1500, {format: 'mp4'});
      const badFormat = await cl.live.record(500, {format: 'avi'}).then(() => 'recorded', (e) => e.message);
      await cl.live.stop();
      const errors = [badFormat];
      for (const options of [{size: 100}, {edit: {target: 'x', strength: 'oracle'}}, {morph: {towards: null}},
                             {smoothing: {minCutoff: -1}}]) {
        errors.push(await cl.live.start(options).then(() => 'started', (e) => e.message));
      }
      let diff = 0;
      for (let i = 0; i < kept.length; i++) diff = Math.max(diff, Math.abs(morphed.wplus[i] - kept[i]));
      return {morphDiff: diff, C: edited.C, errors, running: cl.live.running(), tracks: window.__live(),
        clip: {mime: clip.mime, head: [...clip.bytes.slice(0, 12)], bytes: clip.bytes.length, notices: clip.notices}};
    }""")
    assert got["morphDiff"] < 1e-5  # t = 1: the kept face itself
    assert got["C"] == pytest.approx(0.8)
    assert got["errors"][0].startswith("record's format must be"), got["errors"]
    assert got["errors"][1].startswith("size must be one of"), got["errors"]
    assert "oracle" in got["errors"][2] and "towards a face" in got["errors"][3] and "minCutoff" in got["errors"][4], got
    # the faces as a clip through src/clips.js: MP4 where this Chromium encodes H.264, else WebM with a notice
    clip = got["clip"]
    assert clip["bytes"] > 1000, clip
    if clip["mime"] == "video/mp4":
        assert bytes(clip["head"][4:8]) == b"ftyp" and not clip["notices"], clip
    else:
        assert clip["mime"] == "video/webm" and clip["head"][:4] == [0x1A, 0x45, 0xDF, 0xA3] and "H.264" in clip["notices"][0], clip
    assert not got["running"] and got["tracks"] == 0


def test_the_live_section_shows_stats_records_webm_and_releases_the_camera(page):
    page.click("#live-start")
    page.wait_for_function("window.celeblook.live.stats().frames >= 5", timeout=60_000)
    page.wait_for_function("document.getElementById('live-stats').textContent.includes('fps')")
    assert "synth" in page.text_content("#live-stats")
    page.click("#live-record")
    page.wait_for_function("!document.getElementById('live-video').hidden", timeout=30_000)
    head = page.evaluate("""async () => [...new Uint8Array(await (await fetch(document.getElementById('live-video').href))
      .arrayBuffer()).slice(0, 4)]""")
    assert head == [0x1A, 0x45, 0xDF, 0xA3]  # WebM (EBML)
    page.click("#live-stop")
    page.wait_for_function("window.__live() === 0 && !window.celeblook.live.running()")
    assert page.is_visible("#live-start") and page.is_hidden("#live-stop") and page.is_hidden("#live-record")


def test_the_live_recording_comes_in_the_chosen_clip_format_and_shares(page):
    """Issue 22: Record made WebM only and had no Share; now the page's clip formats (MP4 where this browser
    encodes H.264, else WebM) and a Share button, as for sweeps and morphs."""
    page.evaluate(f"() => {{ {WEB_SHARE} }}")
    page.click("#live-start")
    page.wait_for_function("window.celeblook.live.stats().frames >= 5", timeout=60_000)
    page.select_option("#live-format", "mp4")
    page.click("#live-record")
    page.wait_for_function("!document.getElementById('live-video').hidden", timeout=30_000)
    name, text = page.get_attribute("#live-video", "download"), page.text_content("#live-video")
    head = page.evaluate("""async () => [...new Uint8Array(await (await fetch(document.getElementById('live-video').href))
      .arrayBuffer()).slice(0, 8)]""")
    if name == "celeblook-live.mp4":
        assert text == "MP4" and bytes(head[4:8]) == b"ftyp", (text, head)
    else:  # no H.264 encoder in this Chromium: WebM, as the sweeps and morphs fall back
        assert (name, text, head[:4]) == ("celeblook-live.webm", "WebM", [0x1A, 0x45, 0xDF, 0xA3])
        assert "H.264" in page.text_content("#status")
    page.click("#live-share")
    page.wait_for_function("window.__shared !== undefined")
    shared = page.evaluate("window.__shared")
    assert shared["name"] == name and shared["type"] == ("video/mp4" if name.endswith(".mp4") else "video/webm")
    assert shared["head"] == head[:4]
    page.click("#live-stop")
    page.wait_for_function("window.__live() === 0 && !window.celeblook.live.running()")
    assert page.is_visible("#live-video") and page.is_visible("#live-share")  # the recording stays to keep or share
