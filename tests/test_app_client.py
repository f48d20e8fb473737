"""The launched app called over HTTP with gradio_client: every endpoint, session state, 8 concurrent
clients, and bad input through the API (the server keeps answering)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

os.environ["CELEBLOOK_PRESET"] = "tiny"

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from net import free_port
from synthetic_face import wild_photo


@pytest.fixture(scope="module")
def url():
    _, local_url, _ = app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
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
    crop, face, similarity, files, notes = client.predict(handle_file(photo), False, 0, 256, api_name="/invert")
    assert Image.open(crop).size == (1024, 1024) and Image.open(face).size == (256, 256)
    assert -1 <= similarity <= 1 and "untrained" in notes
    assert sorted(os.path.splitext(f)[1] for f in files) == [".npy", ".png"]
    inverted = np.load(next(f for f in files if f.endswith(".npy")))
    assert inverted.shape == (23, 512) and np.isfinite(inverted).all()

    out = client.predict("last face", None, False, "a big smile", "", 0.25, True, 4, 256, api_name="/edit")
    original, manual, learned, oracle, table, gif, gif_file, notes = out
    np.testing.assert_array_equal(np.asarray(Image.open(original)), np.asarray(Image.open(face)))  # edits the inversion
    rows = {row[0]: row for row in table["data"]}
    assert rows["manual"][1] == pytest.approx(0.25) and rows["oracle"][4] > 1
    assert -1 <= rows["manual"][2] <= 1.0001 and -1 <= rows["manual"][3] <= 1
    assert Image.open(gif).n_frames == 6 and Image.open(gif_file).info["loop"] == 0


def test_text_to_face_and_morph(client, photo):
    face, score, files, notes = client.predict("a smiling woman with red hair", 7, 0.7, 0, 512, api_name="/text_to_face")
    assert Image.open(face).size == (512, 512) and -1 <= score <= 1 and len(files) == 2
    gif, gif_file, mixed, notes = client.predict(
        "photo", handle_file(photo), "prompt", None, "a famous actress", False, "style mix", 10, 5, 60, False, 256,
        api_name="/morph",
    )
    image = Image.open(gif)
    assert image.n_frames == 5 and image.size == (256, 256) and image.info["duration"] == 60
    assert Image.open(mixed).size == (256, 256)


def test_eight_concurrent_clients_each_get_their_own_seed(url, tmp_path):
    def session(worker: int) -> list[tuple[int, np.ndarray]]:
        own = Client(url, verbose=False, download_files=str(tmp_path / str(worker)))
        answers = []
        for request in range(5):
            seed = 1000 + 10 * worker + request
            gallery, _ = own.predict(seed, 1, 0.6, 256, api_name="/random_face")
            answers.append((seed, np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))))
        return answers

    with ThreadPoolExecutor(8) as pool:
        answers = [a for batch in pool.map(session, range(8)) for a in batch]
    assert len(answers) == 40
    for seed, pixels in answers:
        expected = np.asarray(app.PIPELINE.random_faces([seed], psi=0.6, size=256).faces[0].image)
        np.testing.assert_array_equal(pixels, expected)


def write_bad_files(folder) -> dict[str, tuple[str, str]]:
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
            client.predict(handle_file(str(tmp_path / name)), False, 0, 256, api_name="/invert")
    bad_calls = [
        (("   ", 0, 0.7, 0, 256), "/text_to_face", "empty"),
        # events without photos keep Gradio's own slider check, which also names the bound
        (("face", 0, 9.0, 0, 256), "/text_to_face", "maximum value 1.2"),
        (("face", 0, 0.7, 0, 333), "/text_to_face", "not in the list of choices"),
        (("photo", None, False, "smile", "", 0.3, False, 0, 333), "/edit", "size must be one of 256, 512, 1024"),
        ((0, 1000, 0.7, 256), "/random_face", "maximum value 8"),
        (("last face", None, False, "smile", "", 0.3, False, 0, 256), "/edit", "no face yet"),
        (("photo", None, False, "smile", "", 0.3, False, 0, 256), "/edit", "no photo"),
        (("photo", None, False, "smile", "", 7.0, False, 0, 256), "/edit", "manual C must be between"),
        (("photo", None, "prompt", None, "x", False, "interpolate", 99, 1, 90, True, 128), "/morph", "crossover"),
    ]
    fresh = Client(client.src, verbose=False)  # a new session: no last face
    for args, endpoint, message in bad_calls:
        with pytest.raises(AppError, match=message):
            fresh.predict(*args, api_name=endpoint)
    gallery, _ = client.predict(3, 2, 0.7, 256, api_name="/random_face")
    assert len(gallery) == 2
