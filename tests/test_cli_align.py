"""``python -m celeblook align``: crops, the JSON of every face, and photos without a face."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import procs
from PIL import Image
from real_photos import ASTRONAUT_EYES, astronaut, grace_hopper, skimage_photo

from celeblook.cli import main

REPO = Path(__file__).resolve().parents[1]
FACE_KEYS = {"box", "eye_left", "eye_right", "mouth_left", "mouth_right", "quad"}


def test_every_photo_with_a_face_is_written_and_a_faceless_one_fails_alone(tmp_path):
    astronaut().save(tmp_path / "astronaut.jpg", quality=95)
    skimage_photo("coffee").save(tmp_path / "coffee.png")
    grace_hopper().save(tmp_path / "hopper.png")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    done = procs.run([sys.executable, "-m", "celeblook", "align", str(tmp_path / "astronaut.jpg"), str(tmp_path / "coffee.png"),
                           str(tmp_path / "hopper.png"), "--out", str(out), "--size", "256"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "no face found in coffee.png" in errors[0]
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.json", "astronaut.png", "hopper.json", "hopper.png"]
    assert Image.open(out / "hopper.png").size == (256, 256)
    record = json.loads((out / "astronaut.json").read_text())
    assert set(record) == {"faces", "chosen"} and record["chosen"] == 0 and len(record["faces"]) == 1
    face = record["faces"][0]
    assert set(face) == FACE_KEYS
    np.testing.assert_allclose([face["eye_left"], face["eye_right"]], ASTRONAUT_EYES, atol=3)
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(p["file"]).name for p in printed] == ["astronaut.png", "hopper.png"]


def test_coordinates_are_in_the_original_photo_after_exif_orientation(tmp_path, capsys):
    """A 3072 px photo stored on its side: loaded upright and downscaled to 2048, reported in its own 3072 px."""
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 degrees counter-clockwise to display"
    big = astronaut().resize((3072, 3072), Image.Resampling.BICUBIC)
    big.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "big.jpg", exif=exif, quality=90)
    assert main(["align", str(tmp_path / "big.jpg"), "--out", str(tmp_path), "--size", "128"]) == 0
    face = json.loads((tmp_path / "big.json").read_text())["faces"][0]
    np.testing.assert_allclose([face["eye_left"], face["eye_right"]], np.array(ASTRONAUT_EYES) * 6, atol=12)
    assert "downscaled" in capsys.readouterr().err


def test_a_face_index_picks_another_face_and_a_missing_one_is_an_error(tmp_path, capsys):
    canvas = Image.new("RGB", (1300, 700), (90, 100, 110))
    canvas.paste(astronaut(), (40, 100))
    canvas.paste(grace_hopper().resize((430, 504)), (800, 100))
    canvas.save(tmp_path / "two.png")
    assert main(["align", str(tmp_path / "two.png"), "--out", str(tmp_path / "a"), "--size", "128", "--face", "1"]) == 0
    record = json.loads((tmp_path / "a" / "two.json").read_text())
    assert record["chosen"] == 1 and len(record["faces"]) == 2
    assert record["faces"][1]["box"][0] < 400  # face 1 is the astronaut, the smaller one
    assert main(["align", str(tmp_path / "two.png"), "--out", str(tmp_path / "b"), "--face", "2"]) == 2
    assert "face 2 asked for, but two.png has 2 face(s)" in capsys.readouterr().err
    assert not (tmp_path / "b" / "two.png").exists()


def test_outputs_that_would_collide_are_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    astronaut().save(tmp_path / "face.png")
    astronaut().save(tmp_path / "x" / "face.jpg")
    assert main(["align", str(tmp_path / "face.png"), str(tmp_path / "x" / "face.jpg"), "--out", str(tmp_path / "out")]) == 2
    assert "same name: face" in capsys.readouterr().err
