"""Huge and hostile uploads (celeblook.photo.load): big JPEGs decoded at reduced scale, bounded memory, nothing kept
afterwards; only the named formats opened, and nothing decoded before its size passed the limits.

The memory numbers are measured in a fresh interpreter (the resident set of this test process says little),
loading the photo in worker threads as the app's server does.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import procs
import pytest
from hostile_images import gif_with_huge_later_frame, ico_bomb, other_formats, tiff_with_huge_later_page, webp_of_zeros
from PIL import Image

from celeblook.errors import InputError
from celeblook.photo.load import FORMAT_NAMES, FORMATS, MAX_PIXELS, MAX_SIDE, _decodes_at_reduced_scale, load_photo

REPO = Path(__file__).resolve().parents[1]

MEASURE = r"""
import gc, json, sys
from concurrent.futures import ThreadPoolExecutor
from celeblook.errors import InputError
from celeblook.photo.load import load_photo

def status_mb(key):  # this process's own numbers (ru_maxrss would include the parent's, inherited at fork)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ":")) / 1024

try:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # peak (VmHWM) := now, so imports do not count
except OSError:  # kernels before 4.0: the imports' peak (~100 MB, below the decode's) stays in VmHWM
    pass
before = status_mb("VmRSS")
def upload(path):  # (size, notices), or (None, [the message]) for a refused file
    try:
        photo = load_photo(path)
    except InputError as err:
        return None, [str(err)]
    return photo.image.size, photo.notices

with ThreadPoolExecutor(4) as pool:  # the server decodes uploads in worker threads
    sizes, notices = zip(*(pool.submit(upload, sys.argv[1]).result() for _ in range(3)))
    notices = notices[0]
    gc.collect()
    kept = status_mb("VmRSS") - before  # with the threads (and their malloc arenas) still alive
peak = status_mb("VmHWM") - before
print(json.dumps({"sizes": sizes, "notices": notices, "peak_mb": peak, "kept_mb": kept}))
"""


def measure(path: Path) -> dict:
    result = procs.run([sys.executable, "-c", MEASURE, str(path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def make_image(path: Path, size: tuple[int, int], **save) -> Path:
    """A flat gray photo of ``size``, written by another process (a 96 MP image is 384 MB in Pillow)."""
    code = ("import sys, json; from PIL import Image; "
            "Image.new('RGB', tuple(json.loads(sys.argv[2])), (120, 110, 100)).save(sys.argv[1], **json.loads(sys.argv[3]))")
    procs.run([sys.executable, "-c", code, str(path), json.dumps(size), json.dumps(save)], check=True, timeout=300)
    return path


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("huge")
    return {
        "jpeg_96mp": make_image(tmp / "96mp.jpg", (12000, 8000), quality=80),
        "progressive_54mp": make_image(tmp / "54mp_progressive.jpg", (9000, 6000), quality=80, progressive=True),
        "png_49mp": make_image(tmp / "49mp.png", (7000, 7000)),
    }


def test_a_96_megapixel_jpeg_is_downscaled_in_bounded_memory(huge):
    measured = measure(huge["jpeg_96mp"])
    assert measured["sizes"] == [[MAX_SIDE, 1365]] * 3
    assert measured["notices"] == ["downscaled from 12000x8000 to 2048x1365 px"]
    # decoded by libjpeg at 1/4 scale (3000x2000, 24 MB in Pillow): a full decode would be 384 MB
    assert measured["peak_mb"] < 120, measured
    assert measured["kept_mb"] < 40, measured


def test_a_49_megapixel_png_is_held_once_and_not_kept(huge):
    measured = measure(huge["png_49mp"])
    assert measured["sizes"] == [[MAX_SIDE, MAX_SIDE]] * 3
    # the decode itself is 196 MB (4 bytes a pixel) and Lanczos' first pass 57 MB; with copies of the full
    # image (EXIF turn, RGB conversion) it was 630-680 MB
    assert measured["peak_mb"] < 330, measured
    # glibc kept 560-640 MB of the worker threads' freed arenas before the decode's pages were handed back;
    # now ~40 MB: the three 2048 px results (16 MB each), freed after load_photo returned
    assert measured["kept_mb"] < 100, measured


def test_images_decoded_whole_keep_the_pixel_limit(huge, tmp_path):
    with pytest.raises(InputError, match="9000x6000 px, over the 50-megapixel limit for progressive JPEGs"):
        load_photo(huge["progressive_54mp"])
    assert MAX_PIXELS == 50_000_000
    # Pillow's own hard limit (179 MP) stays a refusal with our message
    bomb = tmp_path / "bomb.jpg"
    data = bytearray(huge["jpeg_96mp"].read_bytes()[:4096])
    start = data.index(b"\xff\xc0")  # the frame header: height and width follow length and precision
    data[start + 5 : start + 9] = (20000).to_bytes(2, "big") + (20000).to_bytes(2, "big")
    bomb.write_bytes(bytes(data))
    with pytest.raises(InputError, match="too large to decode safely: photos up to 50 megapixels"):
        load_photo(bomb)


def test_only_single_scan_sequential_jpegs_count_as_scalable(huge, tmp_path):
    def scalable(path: Path) -> bool:
        with open(path, "rb") as f:
            return _decodes_at_reduced_scale(f)

    baseline = huge["jpeg_96mp"]
    assert scalable(baseline) and not scalable(huge["progressive_54mp"])
    data = bytearray(baseline.read_bytes()[:4096])
    scan = data.index(b"\xff\xda")
    data[scan + 4] = 1  # a first scan with one of the three components: libjpeg buffers the whole image
    (tmp_path / "multiscan.jpg").write_bytes(bytes(data))
    assert not scalable(tmp_path / "multiscan.jpg")
    (tmp_path / "cut.jpg").write_bytes(bytes(data[:scan - 100]))
    assert not scalable(tmp_path / "cut.jpg")


def test_a_turned_huge_jpeg_reports_its_upright_size(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "turned.jpg"
    Image.new("RGB", (6000, 4000), "red").save(path, exif=exif)
    photo = load_photo(path)
    assert photo.image.size == (1365, MAX_SIDE)
    assert photo.full_size == (4000, 6000)  # what `align` reports coordinates in, without opening the file again
    assert photo.notices == ["rotated upright according to the photo's EXIF orientation",
                             "downscaled from 4000x6000 to 1365x2048 px"]


def test_huge_palette_images_are_resampled_smoothly(tmp_path):
    # palette images resize by nearest neighbour only: a 1-px checkerboard must average to gray, not alias
    checker = Image.frombytes("P", (4096, 4096), (np.indices((4096, 4096)).sum(0) % 2).astype(np.uint8).tobytes())
    checker.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    checker.save(tmp_path / "checker.png")
    photo = load_photo(tmp_path / "checker.png")
    assert photo.image.size == (MAX_SIDE, MAX_SIDE)
    assert abs(sum(photo.image.getpixel((100, 100))) / 3 - 127.5) < 10


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    return {"ico": ico_bomb(tmp / "bomb.ico"), "webp": webp_of_zeros(tmp / "zeros.webp"),
            "gif": gif_with_huge_later_frame(tmp / "later.gif"), "tiff": tiff_with_huge_later_page(tmp / "later.tif")}


def test_an_ico_with_a_huge_png_entry_is_refused_before_decoding(hostile):
    measured = measure(hostile["ico"])  # 642 KB; Pillow's ICO plugin decodes its entry inside Image.open
    assert measured["notices"] == ["the file is not an image this app can read (use JPEG, PNG, WebP, GIF, BMP or TIFF)"]
    assert measured["peak_mb"] < 30, measured  # decoded, its 13000 x 13000 RGBA pixels are 676 MB


def test_a_small_webp_of_many_pixels_is_refused_before_decoding(hostile):
    measured = measure(hostile["webp"])  # 2 KB of 7000 x 7000 pixels: libwebp and Pillow held 750 MB for it
    assert measured["notices"] == ["the image is 7000x7000 px, over the 16-megapixel limit for WebP: "
                                   "save it as a JPEG or downscale it first"]
    assert measured["peak_mb"] < 30, measured


def test_only_the_first_frame_is_decoded_however_large_a_later_one(hostile):
    for name in ("gif", "tiff"):  # a 200 x 200 first frame, then one of 16000 x 16000
        measured = measure(hostile[name])
        assert measured["sizes"] == [[200, 200]] * 3, measured
        assert measured["notices"] == ["animated image (2 frames): using its first frame"]
        assert measured["peak_mb"] < 30, measured


def test_only_the_named_formats_are_opened(tmp_path):
    refused = re.escape(f"the file is not an image this app can read (use {FORMAT_NAMES})")
    for name, path in other_formats(tmp_path).items():
        with Image.open(path) as image:
            assert image.format == name  # a real image, which Pillow would open (EPS would start Ghostscript)
        with pytest.raises(InputError, match=refused):
            load_photo(path)
    image = Image.new("RGB", (200, 200), (120, 110, 100))
    for name in FORMATS:
        image.save(tmp_path / f"photo.{name.lower()}", name)
        assert load_photo(tmp_path / f"photo.{name.lower()}").image.size == (200, 200), name
    image.save(tmp_path / "phone.mpo", "MPO", save_all=True, append_images=[Image.new("RGB", (300, 300))])
    phone = load_photo(tmp_path / "phone.mpo")  # a phone's JPEG with a second picture after the first
    assert phone.image.size == (200, 200) and phone.notices == []


def test_the_limits_do_not_rest_on_pillows_global_one(monkeypatch, tmp_path, hostile):
    """Pillow's own bomb check (Image.MAX_IMAGE_PIXELS, a global anything in the process may change) only backs
    ours up: with it off, the same files are refused with the same words, before decoding."""
    from test_align import png_claiming_size

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(InputError, match="100000x100000 px, over the 50-megapixel limit: downscale it first"):
        load_photo(png_claiming_size(tmp_path / "bomb.png", 100000, 100000))
    assert load_photo(hostile["gif"]).image.size == (200, 200)
