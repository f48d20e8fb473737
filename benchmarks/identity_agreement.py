"""Identity distance in the page against the app's: face-api's face recognition net (web/src/identity.js, in
headless Chromium on TensorFlow.js's wasm backend) and dlib's ResNet descriptor (celeblook.photo.identity), on
the same pictures, compared pair by pair.

Pictures (licences allow it; nothing is downloaded): scikit-image's astronaut (Eileen Collins, NASA, public
domain) and matplotlib's Grace Hopper (US Navy, public domain), each as it is and in 11 versions (mirrored,
face crop, half and quarter size, rotated 10 and -25 degrees, darkened, blurred, noisy, JPEG quality 15, the
app's 512 px FFHQ crop). Pairs: every pair of one person's 12 pictures (same person) and every pair across the
two (different people). A picture in which either side finds no face is listed and left out. These are the only
real faces at a usable resolution that ship with the installed packages: scikit-image's LFW subset (25 px) is
too small for the page's detector, its cameraman too small for the app's.

Reported: Pearson correlation and mean / max absolute difference of the two distances, and how often the two
agree on "same person" (distance below 0.6, dlib's threshold, which the page applies too); per group of pairs.
Only two known identities at full resolution: read the agreement on real photos as indicative, not a
calibration. The descriptors are computed once per picture (src/identity.js's describe); the page's
identity(a, b) is checked to be their distance on one pair.

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.identity_agreement [--json benchmarks/results_identity.json]
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from benchmarks.browser import CHROMIUM  # noqa: E402
from benchmarks.common import print_table  # noqa: E402
from celeblook.photo.align import align_face  # noqa: E402
from celeblook.photo.identity import SAME_PERSON, face_descriptor  # noqa: E402
from celeblook.web.build import ensure_vendor  # noqa: E402
from celeblook.web.serve import serve_in_thread  # noqa: E402
from tests.real_photos import astronaut, grace_hopper  # noqa: E402

ALIGN_NETS = ("ssd_mobilenetv1_model", "face_landmark_68_model")
IDENTITY_NET = "face_recognition_model"

# The page's own modules, loaded as the worker loads them, with the nets read from web/vendor/ (no site build).
HARNESS = """async ([base, align, identity, samePerson]) => {
  const {createDetector} = await import(`${base}src/align.js`);
  const {createIdentity} = await import(`${base}src/identity.js`);
  const files = (nets) => nets.flatMap((n) => [{file: `${n}-weights_manifest.json`}, {file: `${n}.bin`}]);
  const bytes = (folder) => async (e) => new Uint8Array(await (await fetch(`${base}vendor/face-api/${folder}/${e.file}`)).arrayBuffer());
  const detector = createDetector(base);
  await detector.load(files(align), bytes('model'));
  window.__identity = createIdentity({loadDetector: async () => detector, entries: files(identity),
    loadFile: bytes('identity'), samePerson});
  window.__img = (b64, w, h) => new ImageData(Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0)), w, h);
}"""
DESCRIBE = """async ([b64, w, h]) => { const d = await window.__identity.describe(window.__img(b64, w, h)); return d && Array.from(d); }"""
IDENTITY = """async ([a, b]) => window.__identity.identity(window.__img(...a), window.__img(...b))"""


def versions(name: str, photo: Image.Image) -> dict[str, Image.Image]:
    """The photo and 11 versions of it: the same person in every one, some made hard on purpose."""
    w, h = photo.size
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=15)
    aligned = align_face(photo, size=512)
    left, top, right, bottom = (round(v) for v in aligned.faces[aligned.chosen].box)
    pad = (right - left) // 2
    pixels = np.asarray(photo, np.float64)
    noise = np.random.default_rng(0).normal(0, 20, pixels.shape)
    return {name: photo, f"{name} mirrored": photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            f"{name} face crop": photo.crop((max(0, left - pad), max(0, top - pad), min(w, right + pad), min(h, bottom + pad))),
            f"{name} half size": photo.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
            f"{name} quarter size": photo.resize((w // 4, h // 4), Image.Resampling.LANCZOS),
            f"{name} rotated 10": photo.rotate(10, Image.Resampling.BICUBIC, fillcolor=(128, 128, 128)),
            f"{name} rotated -25": photo.rotate(-25, Image.Resampling.BICUBIC, fillcolor=(128, 128, 128)),
            f"{name} darkened": Image.fromarray((pixels * 0.45).astype(np.uint8)),
            f"{name} blurred": photo.filter(ImageFilter.GaussianBlur(3)),
            f"{name} noisy": Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)),
            f"{name} JPEG q15": Image.open(buffer).convert("RGB"), f"{name} FFHQ crop 512": aligned.image}


def rgba(image: Image.Image) -> list:
    return [base64.b64encode(np.asarray(image.convert("RGBA")).tobytes()).decode(), image.width, image.height]


def page_descriptors(pictures: dict[str, Image.Image]) -> tuple[dict[str, np.ndarray | None], dict]:
    """Each picture's descriptor from the page's code in headless Chromium, and identity() on the first pair."""
    from playwright.sync_api import sync_playwright

    server, base = serve_in_thread(ensure_vendor().parent)
    found = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.route(f"{base}harness.html", lambda route: route.fulfill(body="<!doctype html><title>identity</title>",
                                                                          content_type="text/html"))
            page.goto(f"{base}harness.html")
            page.evaluate(HARNESS, [base, list(ALIGN_NETS), [IDENTITY_NET], SAME_PERSON])
            for name, image in pictures.items():
                found[name] = page.evaluate(DESCRIBE, rgba(image))
            first, second = list(pictures.values())[:2]
            check = page.evaluate(IDENTITY, [rgba(first), rgba(second)])
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return {k: None if v is None else np.asarray(v, np.float64) for k, v in found.items()}, check


def pairs(groups: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    astro, hopper = groups["astronaut"], groups["Grace Hopper"]
    return {"same person (two versions of one photo)": [*itertools.combinations(astro, 2), *itertools.combinations(hopper, 2)],
            "different people (astronaut vs Grace Hopper)": list(itertools.product(astro, hopper))}


def agreement(page: np.ndarray, dlib: np.ndarray) -> dict:
    same_page, same_dlib = page < SAME_PERSON, dlib < SAME_PERSON
    return {"pairs": len(page), "pearson": float(np.corrcoef(page, dlib)[0, 1]) if len(page) > 2 else None,
            "mean_abs_diff": float(np.abs(page - dlib).mean()), "max_abs_diff": float(np.abs(page - dlib).max()),
            "decision_agreement": float((same_page == same_dlib).mean()),
            "same_by_page": int(same_page.sum()), "same_by_dlib": int(same_dlib.sum()),
            "page_range": [float(page.min()), float(page.max())], "dlib_range": [float(dlib.min()), float(dlib.max())]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    groups = {"astronaut": versions("astronaut", astronaut()), "Grace Hopper": versions("Grace Hopper", grace_hopper())}
    pictures = {name: image for group in groups.values() for name, image in group.items()}
    page, check = page_descriptors(pictures)
    dlib = {name: face_descriptor(image) for name, image in pictures.items()}
    missing = {name: [side for side, d in (("page", page[name]), ("dlib", dlib[name])) if d is None] for name in pictures}
    missing = {name: sides for name, sides in missing.items() if sides}
    print(f"no face found: {missing or 'none'}")
    usable = {g: [n for n in names if n not in missing] for g, names in groups.items()}
    first, second = list(pictures)[:2]
    assert check["distance"] is not None and abs(check["distance"] - np.linalg.norm(page[first] - page[second])) < 1e-5, check

    results, everything = {}, ([], [])
    for group, group_pairs in pairs(usable).items():
        p = np.array([np.linalg.norm(page[a] - page[b]) for a, b in group_pairs])
        d = np.array([np.linalg.norm(dlib[a] - dlib[b]) for a, b in group_pairs])
        results[group] = agreement(p, d)
        everything[0].extend(p)
        everything[1].extend(d)
    results["all pairs"] = agreement(np.array(everything[0]), np.array(everything[1]))
    rows = [[g, r["pairs"], r["pearson"], r["mean_abs_diff"], r["max_abs_diff"], r["decision_agreement"],
             f"{r['same_by_page']} / {r['same_by_dlib']}", "{:.2f}-{:.2f}".format(*r["page_range"]),
             "{:.2f}-{:.2f}".format(*r["dlib_range"])] for g, r in results.items()]
    print_table(["pairs", "n", "Pearson r", "mean |diff|", "max |diff|", "same-person agreement", "same: page / dlib",
                 "page range", "dlib range"], rows)
    if args.json:
        args.json.write_text(json.dumps({"threshold": SAME_PERSON, "pictures": len(pictures), "no_face": missing,
                                         "groups": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
