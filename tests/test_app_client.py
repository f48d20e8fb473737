"""The launched app called over HTTP as outside callers do (gradio_client and raw HTTP): every endpoint,
session state, concurrency, queue lanes and their bound, bad input through the API, and files that were never
uploaded."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ["CELEBLOOK_PRESET"] = "tiny"

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from net import free_port, raw_call
from PIL import Image
from synthetic_face import wild_photo

import app
from celeblook.app_support import NOT_AN_UPLOAD
from celeblook.limits import QUEUE_SIZE, SESSION_TTL_S, SESSIONS


@pytest.fixture(scope="module")
def url():
    _, local_url, _ = app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                                      quiet=True, **app.LAUNCH)
    yield local_url
    app.demo.close()


@pytest.fixture(scope="module")
def client(url, tmp_path_factory):
    return Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("photos") / "wild.png"
    wild_photo(0.0)[0].save(path)
    return str(path)


def test_every_endpoint_is_public(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/random_face", "/invert", "/text_to_face", "/edit", "/morph"} <= names


def test_invert_then_edit_the_last_face_in_the_same_session(client, photo):
    face, pasted, crop, found, similarity, distance, files, notes = client.predict(handle_file(photo), False, 0, 0, 256,
                                                                                  api_name="/invert")
    assert Image.open(crop).size == (1024, 1024) and Image.open(face).size == (256, 256)
    assert Image.open(pasted).size == Image.open(photo).size and len(found) == 1 and distance is None
    direct = app.PIPELINE.invert(photo, size=256).faces[0]
    assert similarity == pytest.approx(direct.scores["clip_similarity"], abs=1e-4) and "untrained" in notes
    assert sorted(os.path.splitext(f)[1] for f in files) == [".npy", ".png"]
    inverted = np.load(next(f for f in files if f.endswith(".npy")))
    np.testing.assert_allclose(inverted, direct.wplus, atol=1e-5)

    out = client.predict("last face", None, False, 0, "a big smile", "", 0.25, True, 4, 256, api_name="/edit")
    original, manual, learned, oracle, table, in_photo, gif, gif_file, notes = out
    np.testing.assert_array_equal(np.asarray(Image.open(original)), np.asarray(Image.open(face)))  # edits the inversion
    rows = {row[0]: row for row in table["data"]}
    expected = app.PIPELINE.edit(direct, "a big smile", strengths=[0.25], size=256).variants[0].face.scores
    assert rows["manual"][1] == pytest.approx(0.25) and rows["oracle"][5] > 1
    assert rows["manual"][2] == pytest.approx(expected["clip_similarity"], abs=1e-3)
    assert rows["manual"][3] == pytest.approx(expected["text_score"], abs=1e-3)
    assert Image.open(gif).n_frames == 6 and Image.open(gif_file).info["loop"] == 0


def test_text_to_face_and_morph(client, photo):
    face, score, files, notes = client.predict("a smiling woman with red hair", 7, 0.7, 0, 512, api_name="/text_to_face")
    expected = app.PIPELINE.text_to_face("a smiling woman with red hair", 7, 0.7, 512).faces[0]
    assert np.array_equal(np.asarray(Image.open(face)), np.asarray(expected.image))
    assert score == pytest.approx(expected.scores["text_score"], abs=1e-4) and len(files) == 2
    gif, gif_file, mixed, notes = client.predict(
        "photo", handle_file(photo), False, 0, "prompt", None, False, 0, "a famous actress", "style mix", 10, 5, 60, False, 256,
        api_name="/morph",
    )
    image = Image.open(gif)
    assert image.n_frames == 5 and image.size == (256, 256) and image.info["duration"] == 60
    assert Image.open(mixed).size == (256, 256)


def test_morph_and_sweep_as_video_decode_back_to_every_frame(client, photo):
    """The format choice: a morph as MP4 (H.264) and a C sweep as WebM (VP9), each every frame of the GIF's loop;
    the image preview is only for GIFs."""
    import av

    def decoded(path: str) -> tuple[str, int, tuple[int, int]]:
        with av.open(path) as container:
            stream = container.streams.video[0]
            return stream.codec_context.name, sum(1 for _ in container.decode(stream)), (stream.width, stream.height)

    preview, clip, _, notes = client.predict(
        "photo", handle_file(photo), False, 0, "prompt", None, False, 0, "a famous actress", "interpolate", 8, 4, 60, True, 128,
        "mp4", api_name="/morph")
    assert preview is None and clip.endswith(".mp4") and decoded(clip) == ("h264", 6, (128, 128))  # ping-pong: 4 + 2
    out = client.predict("last face", None, False, 0, "a big smile", "", 0.25, False, 3, 256, "webm", api_name="/edit")
    assert out[6] is None and out[7].endswith(".webm") and decoded(out[7]) == ("vp9", 4, (256, 256))


def test_numbers_sent_as_text_work_as_the_api_page_shows(url, client):
    """The API page documents size as Literal['256', '512', '1024']: a copied call with size="256" runs."""
    info = json.load(urllib.request.urlopen(f"{url}gradio_api/info", timeout=30))
    size = next(p for p in info["named_endpoints"]["/random_face"]["parameters"] if p["parameter_name"] == "size")
    assert "'256'" in size["python_type"]["type"]
    as_text, _ = client.predict("3", "1", "0.7", "256", api_name="/random_face")
    as_numbers, _ = client.predict(3, 1, 0.7, 256, api_name="/random_face")
    assert Image.open(as_text[0]["image"]).tobytes() == Image.open(as_numbers[0]["image"]).tobytes()


def test_a_server_file_named_in_a_photo_slot_is_refused_without_a_hint(url):
    """A raw HTTP call naming a path on the server: refused with the same words whether the file exists or not."""
    screenshot = str(Path(app.__file__).resolve().parent / "docs" / "screenshot.png")
    answers = [raw_call(url, "invert", [{"path": path}, True, 0, 0, 256, 0])
               for path in (screenshot, "/etc/passwd", "/nonexistent/x.png", "docs/screenshot.png")]
    answers.append(raw_call(url, "morph", ["photo", {"path": screenshot}, True, 0, "prompt", None, False, 0, "x",
                                           "interpolate", 8, 2, 90, False, 128, "gif"]))
    for event, data in answers:
        assert event == "error" and NOT_AN_UPLOAD in json.dumps(data)
    assert len({json.dumps(data) for _, data in answers}) == 1  # nothing tells the paths apart


def test_only_files_this_server_received_as_uploads_are_photos(url, client, photo):
    """Inside the upload folder too: the app's own results and names of missing files get the same one line as
    any other path, and so do payloads that name no file at all (Gradio's own check answered those with no
    message)."""
    (gallery, _) = client.predict(0, 1, 0.7, 256, api_name="/random_face")
    result = gallery[0]["image"]  # the client's download of it: ask the server for its own copy
    _, data = raw_call(url, "random_face", [0, 1, 0.7, 256])
    served = data[0][0]["image"]["path"]
    assert Path(served).is_file() and Path(served).resolve().is_relative_to(Path(app.UPLOADS).resolve())
    missing = str(Path(served).parent / "missing.png")
    payloads = [{"path": served}, {"path": missing}, {"path": str(Path(app.OUT.root) / "x.png")}, {"path": result},
                "", 123, [], {"path": 5}, {"path": None}, {"path": ""}]
    answers = [raw_call(url, "invert", [payload, True, 0, 0, 256, 0]) for payload in payloads]
    answers.append(raw_call(url, "morph", ["photo", {"path": served}, True, 0, "photo", 123, True, 0, "x", "interpolate", 8,
                                           2, 90, False, 128, "gif"]))
    for payload, (event, data) in zip(payloads, answers):
        assert event == "error" and NOT_AN_UPLOAD in json.dumps(data), (payload, data)
    assert len({json.dumps(data) for _, data in answers}) == 1  # nothing tells them apart
    face, *_ = client.predict(handle_file(photo), True, 0, 0, 256, api_name="/invert")  # an upload still works
    assert Image.open(face).size == (256, 256)


def test_at_most_queue_size_requests_wait_and_more_are_refused_at_once(url):
    """With both lanes taken, QUEUE_SIZE requests wait for them and every further one is refused with one line,
    at once; those that waited then run."""
    for held in app.LANES.values():
        held.acquire()
    with ThreadPoolExecutor(80) as pool:
        try:
            calls = [pool.submit(raw_call, url, "random_face", [i, 1, 0.7, 256]) for i in range(80)]
            deadline = time.time() + 60
            while sum(call.done() for call in calls) < 80 - QUEUE_SIZE and time.time() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # none of those waiting may finish while the lanes are held
            refused = [call for call in calls if call.done()]
            assert len(refused) == 80 - QUEUE_SIZE
            answers = [call.result() for call in refused]
            assert all(event == "error" and app.BUSY in json.dumps(data) for event, data in answers), answers[:3]
        finally:
            for held in app.LANES.values():
                held.release()
        waited = [call.result() for call in calls if call not in refused]
    assert len(waited) == QUEUE_SIZE and all(event == "complete" for event, _ in waited)
    docs = (Path(app.__file__).resolve().parent / "docs" / "app.md").read_text()
    assert f"up to {QUEUE_SIZE} more requests wait for their lane, and further ones are refused at once" in docs


def test_a_sessions_last_face_is_kept_as_a_latent_for_a_while(url, monkeypatch):
    """The per-session state is the face's W+ (not its images), forgotten SESSION_TTL_S after it was made, and
    Gradio keeps the state of SESSIONS sessions at most (the least recently used go first)."""
    state = next(block for block in app.demo.blocks.values() if isinstance(block, gr.State))
    assert state.time_to_live == SESSION_TTL_S and app.demo.state_holder.capacity == SESSIONS
    session = Client(url, verbose=False)
    session.predict(4, 1, 0.7, 256, api_name="/random_face")
    kept = app.demo.state_holder[session.session_hash].state_data[state._id]
    assert isinstance(kept, np.ndarray) and kept.shape == (23, 512)
    edit_last = ("last face", None, False, 0, "a big smile", "", 0.3, False, 0, 256)
    session.predict(*edit_last, api_name="/edit")
    monkeypatch.setattr(state, "time_to_live", 1)
    session.predict(4, 1, 0.7, 256, api_name="/random_face")
    time.sleep(3)  # Gradio deletes expired state every second
    with pytest.raises(AppError, match="no face yet in this session"):
        session.predict(*edit_last, api_name="/edit")


def test_bad_values_through_the_raw_api_get_the_apps_own_message(url):
    for endpoint, data, message in [
        ("random_face", [None, 1, 0.7, 256], "seed is missing"),
        ("random_face", ["abc", 1, 0.7, 256], "seed must be a number, got 'abc'"),
        ("random_face", [0, 1, "high", 256], "truncation psi must be a number"),
        ("text_to_face", ["a face", 0, 0.7, 0, "huge"], "size must be one of 256, 512, 1024"),
        ("text_to_face", [123, 0, 0.7, 0, 256], "the prompt must be text, got int"),
        ("text_to_face", [None, 0, 0.7, 0, 256], "the prompt must be text"),
    ]:
        event, answer = raw_call(url, endpoint, data)
        assert event == "error" and message in json.dumps(answer), (endpoint, data, answer)


def test_concurrent_identical_requests_all_download_whole_files(url, tmp_path):
    """16 concurrent /random_face calls over 4 seeds, 5 times: every download complete, one picture per seed."""
    def call(job: tuple[int, int]) -> tuple[int, bytes]:
        round_, worker = job
        own = Client(url, verbose=False, download_files=str(tmp_path / f"{round_}-{worker}"))
        seed = 200 + worker % 4
        gallery, _ = own.predict(seed, 1, 0.6, 256, api_name="/random_face")
        return seed, np.asarray(Image.open(gallery[0]["image"]).convert("RGB")).tobytes()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, [(r, w) for r in range(5) for w in range(16)]))
    assert len(answers) == 80
    by_seed: dict[int, set[bytes]] = {}
    for seed, pixels in answers:
        by_seed.setdefault(seed, set()).add(pixels)
    assert sorted(by_seed) == [200, 201, 202, 203] and all(len(v) == 1 for v in by_seed.values())
    expected = np.asarray(app.PIPELINE.random_faces(201, psi=0.6, size=256).faces[0].image).tobytes()
    assert by_seed[201] == {expected}


def test_a_quick_request_is_answered_during_a_long_refinement(url, photo):
    slow = Client(url, verbose=False)
    job = slow.submit(handle_file(photo), False, 0, 200, 256, api_name="/invert")
    deadline = time.time() + 60
    while job.status().code.name not in ("PROCESSING", "PROGRESS", "FINISHED") and time.time() < deadline:
        time.sleep(0.1)
    quick = Client(url, verbose=False)
    gallery, _ = quick.predict(9, 1, 0.7, 256, api_name="/random_face")
    assert Image.open(gallery[0]["image"]).size == (256, 256)
    assert not job.done(), "the refinement finished first: the quick request was not shown to overtake it"
    face, *_ = job.result(timeout=600)
    assert Image.open(face).size == (256, 256)


def write_bad_files(folder) -> dict[str, str]:
    from test_align import png_claiming_size

    (folder / "notes.png").write_text("not a picture")
    good = folder / "good.png"
    Image.new("RGB", (200, 200), "gray").save(good)
    (folder / "cut.png").write_bytes(good.read_bytes()[:60])
    Image.new("RGB", (40, 40)).save(folder / "tiny.png")
    png_claiming_size(folder / "bomb.png", 30000, 30000)
    return {
        "notes.png": "not an image",
        "cut.png": "corrupt or truncated",
        "tiny.png": "at least 64 px",
        "bomb.png": "megapixel",
        "good.png": "no face found",  # a flat grey square: readable, but nobody in it
    }


def test_bad_input_through_the_api_is_explained_and_the_server_survives(client, tmp_path):
    for name, message in write_bad_files(tmp_path).items():
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(str(tmp_path / name)), False, 0, 0, 256, api_name="/invert")
    bad_calls = [
        (("   ", 0, 0.7, 0, 256), "/text_to_face", "empty"),
        (("face", 0, 9.0, 0, 256), "/text_to_face", "truncation psi must be from 0 to 1.2"),
        (("face", 0, 0.7, 0, 333), "/text_to_face", "size must be one of 256, 512, 1024"),
        (("photo", None, False, 0, "smile", "", 0.3, False, 0, 333), "/edit", "size must be one of 256, 512, 1024"),
        ((0, 1000, 0.7, 256), "/random_face", "number of faces must be from 1 to 8"),
        (("last face", None, False, 0, "smile", "", 0.3, False, 0, 256), "/edit", "no face yet"),
        (("photo", None, False, 0, "smile", "", 0.3, False, 0, 256), "/edit", "no photo"),
        (("photo", None, False, 0, "smile", "", 7.0, False, 0, 256), "/edit", "strength must be a number from -2 to 2"),
        (("photo", None, False, 0, "prompt", None, False, 0, "x", "style mix", 99, 2, 90, True, 128), "/morph", "crossover"),
    ]
    fresh = Client(client.src, verbose=False)  # a new session: no last face
    for args, endpoint, message in bad_calls:
        with pytest.raises(AppError, match=message):
            fresh.predict(*args, api_name=endpoint)
    gallery, _ = client.predict(3, 2, 0.7, 256, api_name="/random_face")
    assert len(gallery) == 2


@pytest.mark.parametrize("endpoint, args, field", [
    ("/random_face", (0, 9, 0.7, 256), "count"),
    ("/invert", (None, False, 0, 501, 256), "refine_steps"),
    ("/invert", (None, False, 0, 0, 256, 9), "refine_iterations"),
    ("/text_to_face", ("a face", 0, 0.7, -1, 256), "optimize_steps"),
    ("/edit", ("photo", None, False, 0, "smile", 7, 0.3, False, 0, 256), "source"),
    ("/morph", ("photo", None, False, 0, "prompt", None, False, 0, "x", "interpolate", 8, 49, 90, True, 128), "n_frames"),
])
def test_every_endpoint_names_the_bad_field(client, endpoint, args, field):
    """Through the server: the request's one check, its line naming the field (as the library's does)."""
    with pytest.raises(AppError) as caught:
        Client(client.src, verbose=False).predict(*args, api_name=endpoint)
    message = str(caught.value)
    assert field in message or field.replace("_", " ") in message, message
