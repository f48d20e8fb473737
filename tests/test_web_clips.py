"""Sweeps and morphs as MP4 / WebM in the page (web/src/clips.js: WebCodecs + the vendored mediabunny), in headless
Chromium on the tiny preset's site: each clip decoded back by FFmpeg (PyAV) to every frame; MP4 falls back to WebM
where the browser has no H.264 encoder (Debian's Chromium builds may lack one); the page's format choice and its
Share button hand over the clip; mediabunny is served by the site and kept for offline visits.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import av
import pytest
from test_web import blob_bytes, browser, call, space, url, wait_done  # noqa: F401 (fixtures)
from test_web_product import WEB_SHARE

pytest.importorskip("playwright.sync_api")

# what this browser encodes: H.264 (the codec mediabunny asks for at 256 px, Baseline level 3.1), VP9
SUPPORTED = """async () => Object.fromEntries(await Promise.all(['avc1.42001f', 'vp09.00.31.08', 'vp8'].map(async (codec) =>
  [codec, (await VideoEncoder.isConfigSupported({codec, width: 256, height: 256, bitrate: 1e6})).supported])))"""


def decoded(data: bytes) -> tuple[str, str, int, tuple[int, int]]:
    """(container, codec, frames, size) of a video, decoded by FFmpeg."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return container.format.name, stream.codec_context.name, frames, (stream.width, stream.height)


@pytest.fixture(scope="module")
def page(browser, url):  # noqa: F811
    page = browser.open(url)
    yield page
    page.close()


def test_clips_decode_back_to_every_frame_in_the_format_this_browser_encodes(page):
    has_h264 = page.evaluate(SUPPORTED)["avc1.42001f"]
    got = call(page, """async (cl) => {
        const a = (await cl.randomLatent(1)).wplus, b = (await cl.randomLatent(2)).wplus;
        const out = {};
        for (const format of ['mp4', 'webm', 'gif']) {
          const clip = await cl.morphClip(a, b, {format, frames: 4, size: 256});
          out[format] = {...clip, bytes: window.__b64(clip.bytes)};
        }
        const sweep = await cl.sweepClip(a, 'a face with glasses', {format: 'webm', frames: 3, size: 256});
        out.sweep = {...sweep, bytes: window.__b64(sweep.bytes)};
        out.gif = {...out.gif, same: out.gif.bytes === window.__b64(await cl.morphGif(a, b, {frames: 4, size: 256}))};
        return out; }""")
    mp4, webm, sweep = (base64.b64decode(got[k]["bytes"]) for k in ("mp4", "webm", "sweep"))
    if has_h264:
        assert (got["mp4"]["mime"], got["mp4"]["codec"], got["mp4"]["notices"]) == ("video/mp4", "avc", [])
        assert decoded(mp4)[1:] == ("h264", 4, (256, 256)) and "mp4" in decoded(mp4)[0]
    else:  # the fallback: the same frames as WebM, and a notice saying why
        assert (got["mp4"]["mime"], got["mp4"]["format"]) == ("video/webm", "webm")
        codec = got["mp4"]["codec"].upper()
        assert got["mp4"]["notices"] == [f"this browser has no H.264 encoder: the clip is WebM ({codec}) instead of MP4"]
        assert decoded(mp4)[2:] == (4, (256, 256))
    assert (got["webm"]["mime"], got["webm"]["codec"]) == ("video/webm", "vp9")
    assert decoded(webm) == ("matroska,webm", "vp9", 4, (256, 256)) and decoded(sweep)[2:] == (3, (256, 256))
    assert got["gif"]["mime"] == "image/gif" and got["gif"]["same"]  # the GIF clip is morphGif's GIF
    assert min(len(mp4), len(webm)) < len(base64.b64decode(got["gif"]["bytes"]))


def test_mp4_falls_back_to_webm_only_where_h264_is_missing(page, url):  # noqa: F811
    """chooseVideo over a stand-in for the browser's encoders: each case of the fallback, without depending on
    which encoders this Chromium build has."""
    got = page.evaluate("""async (base) => {
        const {chooseVideo} = await import(`${base}src/clips.js`);
        const only = (...codecs) => async (codec) => codecs.includes(codec);
        const pick = async (format, canEncode) => { try { return await chooseVideo(format, 256, canEncode); }
          catch (e) { return e.message; } };
        return [await pick('mp4', only('avc', 'vp9', 'vp8')), await pick('mp4', only('vp9', 'vp8')), await pick('mp4', only('vp8')),
                await pick('webm', only('avc', 'vp8')), await pick('mp4', only()), await pick('webm', only('avc')),
                await pick('avi', only('vp9'))]; }""", url)
    fell_back = "this browser has no H.264 encoder: the clip is WebM ({}) instead of MP4"
    assert got == [
        {"format": "mp4", "codec": "avc", "notices": []},
        {"format": "webm", "codec": "vp9", "notices": [fell_back.format("VP9")]},
        {"format": "webm", "codec": "vp8", "notices": [fell_back.format("VP8")]},
        {"format": "webm", "codec": "vp8", "notices": []},
        "this browser encodes no MP4 or WebM video: choose the GIF",
        "this browser encodes no WebM video: choose the GIF",
        'format must be one of gif, mp4, webm, got "avi"',
    ]


def test_cancel_stops_a_video_between_frames_and_the_next_clip_is_whole(page):
    got = call(page, """async (cl) => { const a = (await cl.randomLatent(1)).wplus, b = (await cl.randomLatent(2)).wplus;
        let frames = 0, cancelled;
        const job = cl.morphClip(a, b, {format: 'mp4', frames: 48, size: 512,
          onFrame: (done) => { frames = done; if (done >= 1) cl.cancel(); }});
        try { await job; cancelled = false; } catch (e) { cancelled = e.cancelled; }
        const next = await cl.morphClip(a, b, {format: 'mp4', frames: 2, size: 256});
        return {cancelled, frames, next: window.__b64(next.bytes)}; }""")
    assert got["cancelled"] and got["frames"] <= 3, got
    assert decoded(base64.b64decode(got["next"]))[2:] == (2, (256, 256))


def test_the_format_choice_shows_the_clip_and_share_hands_it_over(browser, url):  # noqa: F811
    page = browser.open(url, viewport={"width": 390, "height": 844})
    assert page.eval_on_selector_all("#morph-format option", "(os) => os.map((o) => [o.value, o.text])") == [
        ["gif", "GIF"], ["mp4", "MP4"], ["webm", "WebM"]]  # site.json's formats, the GIF first (the default)
    page.select_option("#size", "256")
    page.fill("#seed", "3")
    page.click("#random")
    wait_done(page, "Random face")
    page.click("#keep")
    page.fill("#seed", "4")
    page.click("#random")
    wait_done(page, "Random face")
    page.fill("#frames", "3")
    page.select_option("#morph-format", "webm")
    page.click("#morph")
    wait_done(page, "Morph GIF")
    assert page.is_visible("#gif-video") and not page.is_visible("#gif")
    assert page.get_attribute("#gif-link", "download") == "celeblook-morph.webm" and page.text_content("#gif-link") == "WebM"
    assert decoded(blob_bytes(page, "gif-link"))[1:] == ("vp9", 3, (256, 256))
    video = "document.getElementById('gif-video')"
    assert page.evaluate(f"{video}.videoWidth || new Promise((done) => "
                         f"{video}.addEventListener('loadedmetadata', (e) => done(e.target.videoWidth)))") == 256  # it plays
    with page.expect_download() as download:  # headless Chromium on Linux has no Web Share: a download
        page.click("#gif-share")
    assert download.value.suggested_filename == "celeblook-morph.webm"
    assert Path(download.value.path()).read_bytes()[:4] == bytes([0x1A, 0x45, 0xDF, 0xA3])  # EBML: WebM
    page.evaluate(f"() => {{ {WEB_SHARE} }}")  # a browser that shares files gets the clip itself
    page.click("#gif-share")
    page.wait_for_function("document.getElementById('status').textContent === 'Share: shared'")
    assert page.evaluate("window.__shared") == {"name": "celeblook-morph.webm", "type": "video/webm", "head": [0x1A, 0x45, 0xDF, 0xA3]}
    page.select_option("#morph-format", "gif")  # and back to a GIF: the image shows again
    page.click("#morph")
    wait_done(page, "Morph GIF")
    assert page.is_visible("#gif") and not page.is_visible("#gif-video")
    assert blob_bytes(page, "gif-link")[:6] == b"GIF89a" and page.get_attribute("#gif-link", "download") == "celeblook-morph.gif"
    page.close()


def test_mediabunny_is_served_by_the_site_and_kept_for_offline_visits(browser, url, space):  # noqa: F811
    assert (space / "vendor" / "mediabunny" / "mediabunny.min.mjs").is_file()
    assert (space / "vendor" / "licenses" / "mediabunny.LICENSE.txt").read_text().startswith("Mozilla Public License Version 2.0")
    page = browser.open(url)
    page.click("#random")
    wait_done(page, "Random face")
    page.wait_for_function("Number(document.getElementById('offline').dataset.kept) >= 1", timeout=60_000)
    kept = page.evaluate("async () => (await (await caches.open('celeblook-site-v1')).keys()).map((r) => r.url)")
    assert f"{url}vendor/mediabunny/mediabunny.min.mjs" in kept and f"{url}src/clips.js" in kept
    page.close()
