"""Upload handling (celeblook.photo.load) and FFHQ-style alignment (celeblook.photo.align) on real and drawn photos."""

from __future__ import annotations

import struct
import zlib

import cv2
import dlib
import numpy as np
import pytest
from PIL import Image
from real_photos import ASTRONAUT_EYES, astronaut, crop_errors, grace_hopper, group_photo, reference_points, skimage_photo
from synthetic_face import draw_face

from celeblook.errors import InputError
from celeblook.photo.align import align_face, alignment_record, detect_faces, ffhq_quad, render_quad, warp_quad
from celeblook.photo.load import MAX_SIDE, load_photo

MAX_ERROR = 0.05  # IOD: the bound on the median eye-centre error against the 68-point reference


def similarity(angle_deg: float, scale: float, shift) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), shift[0]], [scale * np.sin(a), scale * np.cos(a), shift[1]]])


def apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.asarray(p, float) @ m[:, :2].T + m[:, 2]


def turned(image: Image.Image, angle: float, scale: float = 1.0) -> Image.Image:
    """The photo scaled, then rolled by ``angle`` degrees (counter-clockwise) on a grey canvas."""
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(120, 120, 120))


def turned_points(points: np.ndarray, size, angle: float, scale: float, new_size) -> np.ndarray:
    """Where ``turned`` moves points of the photo: scaled, then turned counter-clockwise about the centre."""
    a = np.deg2rad(angle)
    rotate = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # counter-clockwise on screen (y down)
    return (points * scale - np.array(size) * scale / 2) @ rotate.T + np.array(new_size) / 2


def eye_line_in_crop(aligned) -> np.ndarray:
    face = aligned.faces[aligned.chosen]
    to_crop = cv2.invertAffineTransform(aligned.crop_to_photo())
    return apply(to_crop, np.array([face.eye_left, face.eye_right])) / aligned.image.width


# --- the FFHQ quad and its rendering ----------------------------------------------------------------------


def test_quad_of_an_upright_face_is_the_ffhq_square():
    quad = ffhq_quad([100.0, 200.0], [200.0, 200.0], [140.0, 290.0], [160.0, 290.0])
    # eye-to-mouth 90 < 1.11 eye distances: side = 2 * 2 * 100; centre 0.1 * 90 below the eyes
    np.testing.assert_allclose(quad, [[-50, 9], [-50, 409], [350, 409], [350, 9]], atol=1e-9)
    # a long face: the side follows the mouth (2 * 1.8 * 150)
    np.testing.assert_allclose(np.ptp(ffhq_quad([100, 200], [200, 200], [150, 350], [150, 350])[:, 1]), 540)


@pytest.mark.parametrize("angle,scale,shift", [(17.0, 1.7, (40, -25)), (-33.0, 0.6, (300, 120))])
def test_quad_follows_a_similarity_transform_of_the_landmarks(angle, scale, shift):
    """The recipe has no preferred orientation: moving the face moves the crop with it."""
    points = np.array([[100, 200], [190, 195], [120, 300], [180, 302]], float)
    m = similarity(angle, scale, shift)
    np.testing.assert_allclose(ffhq_quad(*apply(m, points)), apply(m, ffhq_quad(*points)), atol=1e-9)


def test_warp_undoes_a_rotation_of_the_photo():
    face = draw_face()
    points = np.array([[194.0, 232.0], [318.0, 232.0], [236.0, 372.0], [276.0, 372.0]])
    upright = warp_quad(face, ffhq_quad(*points), 256)
    m = similarity(25.0, 0.9, (60, 40))
    rotated = cv2.warpAffine(face, m, (640, 640), borderMode=cv2.BORDER_REFLECT)
    again = warp_quad(rotated, ffhq_quad(*apply(m, points)), 256)
    centre = (slice(32, 224), slice(32, 224))  # away from the mirrored borders
    assert np.abs(upright[centre].astype(int) - again[centre].astype(int)).mean() < 4.0


def test_supersampling_keeps_large_crops_smooth():
    """A 1500 px quad rendered at 128 px is area-averaged, not point-sampled: a 1-px checkerboard turns grey."""
    checker = ((np.indices((1600, 1600)).sum(0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(checker[..., None], 3, axis=2)
    quad = np.array([[50, 50], [50, 1550], [1550, 1550], [1550, 50]], float)
    out = render_quad(rgb, quad, 128)
    assert abs(out.mean() - 127.5) < 8 and out.std() < 30


def test_where_the_quad_leaves_the_photo_the_mirror_fades_to_the_median_colour():
    """FFHQ's padding: mirrored, blurred and faded; never black corners, never a sharp mirrored copy."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    photo[:, :, 2] = 200  # a median colour to recognise: (~128, ~128, 200)
    quad = np.array([[-300, -300], [-300, 300], [300, 300], [300, -300]], float)  # the photo is the lower right quarter
    out = render_quad(photo, quad, 256).astype(float)
    plain = warp_quad(photo, quad, 256).astype(float)
    corner = out[:24, :24].reshape(-1, 3)  # 300 px outside the photo in both directions
    assert np.abs(corner.mean(axis=0) - [127.5, 127.5, 200]).max() < 6 and corner[:, :2].std() < 3
    inside = (slice(180, 256), slice(180, 256))  # more than a third of the padding away from the photo's edge
    np.testing.assert_array_equal(out[inside], plain[inside])
    edge = out[132:140, 140:250, :2]  # just inside the photo's top edge: blurred, so far smoother than noise
    assert edge.std() < plain[132:140, 140:250, :2].std() / 3


# --- real photos against the 68-point FFHQ reference --------------------------------------------------------


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_crops_land_where_the_68_point_reference_puts_them(name):
    """Each photo as it is, scaled (0.6x, 2x) and rolled (-20, 15, 30 degrees): our eye centres, and where the
    reference's eye centres land in our crop versus the reference crop, are within 0.05 IOD (median), none
    off by more than 0.1."""
    photo = astronaut() if name == "astronaut" else grace_hopper()
    crop_error, landmark_error = [], []
    for angle, scale in [(0, 1.0), (0, 0.6), (0, 2.0), (-20, 1.0), (15, 0.6), (30, 1.0)]:
        variant = turned(photo, angle, scale)
        aligned = align_face(variant, size=256)
        face = aligned.faces[aligned.chosen]
        reference = reference_points(variant, near=np.mean(np.reshape(face.box, (2, 2)), axis=0))
        crop_error.append(crop_errors(aligned.quad, reference)[:2])
        eyes = np.array([face.eye_left, face.eye_right])
        landmark_error.append(np.hypot(*(eyes - reference[:2]).T) / np.hypot(*(reference[1] - reference[0])))
    assert np.median(crop_error) < MAX_ERROR and np.max(crop_error) < 2 * MAX_ERROR, np.round(crop_error, 3)
    assert np.median(landmark_error) < MAX_ERROR and np.max(landmark_error) < 2 * MAX_ERROR, np.round(landmark_error, 3)


@pytest.mark.parametrize("angle", [-35.0, 25.0])
def test_head_roll_is_followed(angle):
    """A rolled head comes out upright: the eyes level in the crop, where FFHQ puts them."""
    aligned = align_face(turned(astronaut(), angle), size=256)
    eyes = eye_line_in_crop(aligned)
    assert abs(np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))) < 3
    np.testing.assert_allclose(eyes, [[0.375, 0.47], [0.625, 0.47]], atol=0.03)


def test_a_tiny_face_in_a_large_photo_is_found():
    """The astronaut at 0.38x (a 34 px face box) pasted into a 2048x1536 photo of blurred noise."""
    rng = np.random.default_rng(0)
    canvas = Image.fromarray(cv2.GaussianBlur(rng.integers(0, 256, (1536, 2048, 3), dtype=np.uint8), (0, 0), 4))
    scale, offset = 0.38, np.array([1300.0, 900.0])
    canvas.paste(astronaut().resize((round(512 * scale),) * 2, Image.Resampling.LANCZOS), tuple(offset.astype(int)))
    aligned = align_face(canvas, size=256)
    face = aligned.faces[aligned.chosen]
    eyes = offset + np.array(ASTRONAUT_EYES) * scale
    iod = np.hypot(*(eyes[1] - eyes[0]))
    assert len(aligned.faces) == 1 and face.box[2] - face.box[0] < 40
    assert np.hypot(*(np.array([face.eye_left, face.eye_right]) - eyes).T).max() < 0.15 * iod
    assert any("small" in n for n in aligned.notices)


def test_every_face_is_reported_largest_first_and_any_can_be_picked():
    canvas = group_photo()
    faces = detect_faces(canvas)
    assert len(faces) == 2  # the astronaut's mission patch is not a third
    assert faces[0].box[0] > 800 and faces[1].box[0] < 400 and faces[0].area > faces[1].area
    default, other = align_face(canvas, size=128), align_face(canvas, size=128, face=1)
    assert default.chosen == 0 and other.chosen == 1 and "2 faces" in default.notices[0]
    np.testing.assert_allclose(other.quad, faces[1].quad)
    with pytest.raises(InputError, match="face 2 asked for, but the group photo has 2 face"):
        align_face(canvas, face=2, label="the group photo")


@pytest.mark.parametrize("angle,scale", [(-10, 1.0), (-10, 2.0), (0, 0.8), (-20, 1.25)])
def test_false_detections_in_a_real_photo_are_dropped(angle, scale):
    """In these takes of the astronaut dlib's detector also boxes her mission patch or suit folds above its
    threshold (scores 0.05-0.57, measured); looking again at each box's upright crop keeps only her face."""
    photo = turned(astronaut(), angle, scale)
    detector = dlib.get_frontal_face_detector()
    assert len(detector(np.asarray(photo.convert("L")), 0)) >= 2
    faces = detect_faces(photo)
    assert len(faces) == 1
    eyes = turned_points(np.array(ASTRONAUT_EYES), astronaut().size, angle, scale, photo.size)
    np.testing.assert_allclose([faces[0].eye_left, faces[0].eye_right], eyes, atol=0.15 * 43 * scale)


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "horse", "noise", "flat"])
def test_things_that_are_not_faces_are_refused(name):
    if name == "noise":
        photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8))
    elif name == "flat":
        photo = Image.new("RGB", (300, 300), (120, 130, 140))
    else:
        photo = skimage_photo(name)
    with pytest.raises(InputError, match=f"no face found in {name}.png.*already aligned"):
        align_face(photo, size=256, label=f"{name}.png")


@pytest.mark.parametrize("turn", [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270])
def test_photos_turned_on_their_side_or_upside_down_are_refused(turn):
    for photo in (astronaut(), grace_hopper()):
        with pytest.raises(InputError, match="no face found"):
            align_face(photo.transpose(turn), size=256)


def test_a_three_quarter_profile_is_refused_rather_than_cropped_badly():
    """skimage's `camera` (a small face turned ~60 degrees): the detector scores it weakly and its upright crop
    is not a frontal face, so it is refused. dlib's reference (HOG upsampled once) misses it too."""
    camera = skimage_photo("camera")
    assert reference_points(camera, near=(240, 160)) is None
    with pytest.raises(InputError, match="no face found"):
        align_face(camera, size=256)


def test_exif_orientation_still_works(tmp_path):
    """Stored on its side with an EXIF tag saying so: loaded upright, aligned as the upright photo."""
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.jpg"
    astronaut().transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    aligned = align_face(load_photo(path).image, size=256)
    face = aligned.faces[aligned.chosen]
    np.testing.assert_allclose([face.eye_left, face.eye_right], ASTRONAUT_EYES, atol=3)


def test_the_alignment_record_is_plain_json_in_photo_pixels():
    aligned = align_face(astronaut(), size=128)
    record = alignment_record(aligned)
    assert set(record) == {"faces", "chosen"} and record["chosen"] == 0
    face = record["faces"][0]
    assert set(face) == {"box", "eye_left", "eye_right", "mouth_left", "mouth_right", "quad"}
    assert len(face["box"]) == 4 and len(face["quad"]) == 4 and all(len(p) == 2 for p in face["quad"])
    np.testing.assert_allclose([face["eye_left"], face["eye_right"]], ASTRONAUT_EYES, atol=3)
    assert face["mouth_left"][1] > face["eye_left"][1] + 30  # the mouth is below the eyes
    doubled = alignment_record(aligned, photo_size=(1024, 1024))["faces"][0]
    np.testing.assert_allclose(doubled["quad"], np.array(face["quad"]) * 2, atol=0.02)


def test_a_drawn_face_is_still_found():
    """The app's tests use a drawn face (tests/synthetic_face.py): dlib's detector takes it for a face."""
    assert len(detect_faces(Image.fromarray(draw_face()))) == 1


def test_already_aligned_takes_the_centred_square():
    photo = Image.fromarray(np.arange(200 * 300 * 3, dtype=np.uint32).reshape(200, 300, 3).astype(np.uint8))
    aligned = align_face(photo, size=200, already_aligned=True)
    assert aligned.faces == () and aligned.chosen is None and aligned.image.size == (200, 200)
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
