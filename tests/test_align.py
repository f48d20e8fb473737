"""Upload handling (celeblook.photo) and FFHQ-style alignment (celeblook.align)."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from celeblook.align import Landmarks, align_face, detect_landmarks, ffhq_quad, warp_quad
from celeblook.errors import InputError
from celeblook.photo import MAX_SIDE, load_photo
from synthetic_face import EYES, MOUTH, draw_face, wild_photo

# where FFHQ framing puts the eyes (fractions of the side) when the mouth is 0.9 eye distances below them
FFHQ_EYES = np.array([[0.375, 0.4775], [0.625, 0.4775]])


def similarity(angle_deg: float, scale: float, shift) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), shift[0]], [scale * np.sin(a), scale * np.cos(a), shift[1]]])


def apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:, :2].T + m[:, 2]


# --- the FFHQ quad ------------------------------------------------------------------------------------------


def test_quad_of_an_upright_face_is_the_ffhq_square():
    lm = Landmarks.from_eyes(np.array([100.0, 200.0]), np.array([200.0, 200.0]))
    quad = ffhq_quad(lm)
    # side = 2 * max(2 * eye distance, 1.8 * eye-to-mouth) = 400; centre 0.1 eye-to-mouth below the eyes
    np.testing.assert_allclose(quad, [[-50, 9], [-50, 409], [350, 409], [350, 9]], atol=1e-9)


@pytest.mark.parametrize("angle,scale,shift", [(17.0, 1.7, (40, -25)), (-33.0, 0.6, (300, 120))])
def test_quad_follows_a_similarity_transform_of_the_landmarks(angle, scale, shift):
    """The recipe has no preferred orientation: moving the face moves the crop with it."""
    lm = Landmarks(*(np.array(p, float) for p in ([100, 200], [190, 195], [120, 300], [180, 302])))
    m = similarity(angle, scale, shift)
    moved = Landmarks(*(apply(m, p) for p in (lm.eye_left, lm.eye_right, lm.mouth_left, lm.mouth_right)))
    np.testing.assert_allclose(ffhq_quad(moved), apply(m, ffhq_quad(lm)), atol=1e-9)


def test_warp_undoes_a_rotation_of_the_photo():
    face = draw_face()
    lm = Landmarks.from_eyes(np.array([194.0, 232.0]), np.array([318.0, 232.0]))
    upright = warp_quad(face, ffhq_quad(lm), 256)
    m = similarity(25.0, 0.9, (60, 40))
    turned = cv2.warpAffine(face, m, (640, 640), borderMode=cv2.BORDER_REFLECT)
    lm_turned = Landmarks.from_eyes(apply(m, lm.eye_left), apply(m, lm.eye_right))
    again = warp_quad(turned, ffhq_quad(lm_turned), 256)
    centre = (slice(32, 224), slice(32, 224))  # away from the mirrored borders
    assert np.abs(upright[centre].astype(int) - again[centre].astype(int)).mean() < 4.0


def test_supersampling_keeps_large_crops_smooth():
    """A 1500 px quad rendered at 128 px is area-averaged, not point-sampled: a 1-px checkerboard turns grey."""
    checker = ((np.indices((1600, 1600)).sum(0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(checker[..., None], 3, axis=2)
    quad = np.array([[50, 50], [50, 1550], [1550, 1550], [1550, 50]], float)
    out = warp_quad(rgb, quad, 128)
    assert abs(out.mean() - 127.5) < 8 and out.std() < 30


# --- detection and alignment --------------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [0.0, 12.0, 25.0])
def test_detected_face_is_aligned_to_ffhq_framing(angle):
    photo, eyes = wild_photo(angle)
    aligned = align_face(photo, size=256)
    assert aligned.method == ("face + eyes + mouth" if angle < 20 else "face + eyes")  # the smile cascade is upright-only
    assert aligned.image.size == (256, 256)
    # where the true eyes land in the crop
    src = aligned.quad[[0, 1, 3]]
    to_crop = cv2.getAffineTransform(src.astype(np.float32), np.float32([[0, 0], [0, 256], [256, 0]]))
    landed = apply(to_crop, eyes) / 256
    np.testing.assert_allclose(landed, FFHQ_EYES, atol=0.05)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_mouth_is_found_where_the_drawing_has_it(seed):
    landmarks, method = detect_landmarks(draw_face(seed))
    mouth = (landmarks.mouth_left + landmarks.mouth_right) / 2
    eye_distance = EYES[1][0] - EYES[0][0]
    assert method == "face + eyes + mouth"
    assert np.hypot(*(mouth - np.array(MOUTH))) < 0.1 * eye_distance  # measured: ~3 px of 124


def test_no_face_is_a_clear_error_that_suggests_the_switch():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    flat = Image.new("RGB", (300, 300), (120, 130, 140))
    for photo in (noise, flat):
        with pytest.raises(InputError, match="no face found.*already aligned"):
            align_face(photo, size=256)


def test_already_aligned_takes_the_centred_square():
    photo = Image.fromarray(np.arange(200 * 300 * 3, dtype=np.uint32).reshape(200, 300, 3).astype(np.uint8))
    aligned = align_face(photo, size=200, already_aligned=True)
    assert aligned.method == "centre crop" and aligned.image.size == (200, 200)
    np.testing.assert_allclose(aligned.quad, [[50, 0], [50, 200], [250, 200], [250, 0]])
    assert np.abs(np.asarray(aligned.image).astype(int) - np.asarray(photo)[:, 50:250].astype(int)).mean() < 2
    assert aligned.notices  # says it cropped a non-square photo


# --- loading uploads ----------------------------------------------------------------------------------------


def save(tmp_path, name, image: Image.Image, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return path


def png_claiming_size(path, width: int, height: int):
    """A valid 1x1 PNG whose header claims width x height (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_refused_uploads_say_why(tmp_path):
    (tmp_path / "notes.png").write_text("this is a text file, not a picture")
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = save(tmp_path, "good.png", Image.fromarray(draw_face()))
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    cases = {
        tmp_path / "notes.png": "not an image",
        tmp_path / "empty.jpg": "empty",
        tmp_path / "truncated.png": "corrupt or truncated",
        png_claiming_size(tmp_path / "bomb.png", 20000, 20000): "megapixel",
        png_claiming_size(tmp_path / "pil_bomb.png", 100000, 100000): "megapixel",
        save(tmp_path, "tiny.png", Image.new("RGB", (48, 300))): "at least 64 px",
        tmp_path / "missing.png": "not found",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            load_photo(path)
    with pytest.raises(InputError, match="no photo"):
        load_photo(None)


def test_every_image_mode_becomes_rgb(tmp_path):
    rgba = Image.new("RGBA", (100, 80), (255, 0, 0, 0))
    palette = Image.new("P", (100, 80), 0)
    palette.info["transparency"] = 0
    sixteen = Image.fromarray((np.arange(100 * 80).reshape(80, 100) * 7).astype(np.uint16))
    cases = {
        save(tmp_path, "a.png", rgba): ("transparent", (255, 255, 255)),
        save(tmp_path, "p.png", palette, transparency=0): ("transparent", (255, 255, 255)),
        save(tmp_path, "g.png", Image.new("L", (100, 80), 90)): ("grayscale", (90, 90, 90)),
        save(tmp_path, "c.jpg", Image.new("CMYK", (100, 80), (0, 0, 0, 0))): ("CMYK", (255, 255, 255)),
        save(tmp_path, "i16.png", sixteen): ("grayscale", None),
    }
    for path, (notice, corner) in cases.items():
        photo = load_photo(path)
        assert photo.image.mode == "RGB" and photo.image.size == (100, 80), path
        assert any(notice in n for n in photo.notices), (path, photo.notices)
        if corner:
            assert np.abs(np.asarray(photo.image)[0, 0].astype(int) - corner).max() <= 2, path
    assert np.asarray(load_photo(tmp_path / "i16.png").image).std() > 50  # stretched, not clipped black


def test_exif_rotation_animation_and_huge_photos(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rotated = load_photo(save(tmp_path, "r.jpg", Image.new("RGB", (200, 100), "red"), exif=exif))
    assert rotated.image.size == (100, 200) and any("EXIF" in n for n in rotated.notices)

    frames = [Image.new("RGB", (90, 90), c) for c in ("blue", "yellow", "green")]
    gif = save(tmp_path, "a.gif", frames[0], save_all=True, append_images=frames[1:], duration=50, loop=0)
    animated = load_photo(gif)
    assert animated.image.getpixel((45, 45))[2] > 200 and "first frame" in animated.notices[0]

    huge = load_photo(save(tmp_path, "h.png", Image.new("RGB", (5000, 2500), "gray")))
    assert huge.image.size == (MAX_SIDE, MAX_SIDE // 2) and "downscaled" in huge.notices[0]
    huge_jpeg = load_photo(save(tmp_path, "h.jpg", Image.new("RGB", (6000, 4000), "gray")))
    assert max(huge_jpeg.image.size) <= MAX_SIDE


def test_arrays_and_images_are_accepted():
    floats = np.random.default_rng(0).random((100, 120, 3))
    assert load_photo(floats).image.size == (120, 100)
    assert load_photo(Image.new("LA", (70, 70))).image.mode == "RGB"
    with pytest.raises(InputError, match="shape"):
        load_photo(np.zeros((10, 10, 5)))
