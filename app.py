"""CelebrityLook web app: invert a photo, make a face from text, edit it with a prompt, morph two faces.

This file only wires the UI to ``celeblook.pipeline.Pipeline``; uploads are checked by
``celeblook.photo``, aligned by ``celeblook.align`` and GIFs written by ``celeblook.media``.

    CELEBLOOK_PRESET=tiny python app.py     # no weights needed (untrained random models, labelled as such)
    python app.py                           # the real models; missing weights are listed in the Status tab
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr
import torch

from celeblook import app_support as support
from celeblook.align import align_face
from celeblook.errors import CelebError, InputError, WeightsError
from celeblook.media import MAX_GIF_FRAMES, save_gif
from celeblook.models.strength import C_MAX
from celeblook.photo import load_photo
from celeblook.pipeline import Pipeline
from celeblook.presets import get_preset

ROOT = Path(__file__).resolve().parent
SIZES = [256, 512, 1024]  # what the generator renders
GIF_SIZES = [128, 256, 512]
MAX_SEED = 2**31 - 1
PSI_RANGE = (0.0, 1.2)
MAX_STEPS = 200  # refinement / CLIP-guided optimisation steps
MAX_FACES = 8  # random faces per request
FRAMES_RANGE = (2, MAX_GIF_FRAMES // 2)  # ping-pong doubles them
DURATION_MS = (20, 1000)
N_SLOTS = 23
HEAVY = dict(concurrency_limit=1, concurrency_id="models")  # one model call at a time on a small CPU box

PRESET = get_preset()
try:
    PIPELINE: Pipeline | None = Pipeline.from_preset(PRESET)  # loaded once, shared read-only by every request
    LOAD_ERROR = None
except WeightsError as err:  # e.g. no generator weights yet: start anyway and say what to run
    PIPELINE, LOAD_ERROR = None, str(err)
OUT = support.OutputDir()
STANDING_NOTICES = set(PIPELINE.notices) if PIPELINE else set()  # what every result says about the loaded models


def pipeline() -> Pipeline:
    if PIPELINE is None:
        raise WeightsError(LOAD_ERROR)
    return PIPELINE


# --- glue ---------------------------------------------------------------------------------------------------


def user_errors(handler):
    """Show CelebErrors (bad input, missing weights) as a one-line gr.Error instead of a generic failure."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except CelebError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapped


def notes(*notice_lists: list[str]) -> str:
    """The notices as Markdown for the tab's notes box; those about this request also pop up as a toast
    (the standing ones, such as "untrained weights", are already in the banner)."""
    lines = list(dict.fromkeys(n for notices in notice_lists for n in notices))  # each model's notice once
    for line in lines:
        if line not in STANDING_NOTICES:
            gr.Warning(line)
    return "\n".join(f"- {line}" for line in lines)


def reporter(progress: gr.Progress):
    return lambda fraction, message="": progress(fraction, desc=message)


def photo_path(payload: object) -> str | None:
    """The file behind an image input. Events with photos skip Gradio's preprocessing (which would open the
    file itself and fail with an unreadable error), so the raw upload record arrives here."""
    if payload is None or isinstance(payload, str):
        return payload
    if isinstance(payload, dict) and payload.get("path"):
        return payload["path"]
    raise InputError("the upload did not arrive as a file: upload the photo again")


def aligned_photo(payload: object, already_aligned: bool):
    photo = load_photo(photo_path(payload))
    aligned = align_face(photo.image, size=1024, already_aligned=bool(already_aligned))
    return aligned, photo.notices + aligned.notices


def remembered(face) -> dict:
    """What the Edit and Morph tabs can reuse: the latent (as numpy, cheap to copy per session) and image."""
    return {"wplus": face.wplus.detach().cpu().numpy(), "image": face.image}


def start_face(start_from: str, payload, already_aligned: bool, last: dict | None, size: int, progress):
    """(W+, image, notices) of the face to edit or morph: the last face made in this session, or a photo."""
    if support.check_choice("start from", start_from, ["last face", "photo"]) == "last face":
        if last is None:
            raise InputError("no face yet in this session: make one in another tab, or choose 'photo' and upload one")
        return torch.from_numpy(last["wplus"]), last["image"], []
    aligned, notices = aligned_photo(payload, already_aligned)
    result = pipeline().invert(aligned.image, size=size, progress=reporter(progress))
    return result.faces[0].wplus, result.faces[0].image, notices + result.notices


# --- handlers (also the API: see README.md, "Calling it from Python") ----------------------------------------------


@user_errors
def random_face(seed, count, psi, size, progress=gr.Progress()):
    seed = support.check_number("seed", seed, 0, MAX_SEED - MAX_FACES, integer=True)
    count = support.check_number("number of faces", count, 1, MAX_FACES, integer=True)
    psi = support.check_number("truncation", psi, *PSI_RANGE)
    size = support.check_choice("size", size, SIZES)
    result = pipeline().random_faces(list(range(seed, seed + count)), psi=psi, size=size)
    gallery = [(face.image, f"seed {seed + i}") for i, face in enumerate(result.faces)]
    return gallery, notes(result.notices), remembered(result.faces[0])


@user_errors
def invert(photo, already_aligned, refine_steps, size, progress=gr.Progress()):
    steps = support.check_number("refinement steps", refine_steps, 0, MAX_STEPS, integer=True)
    size = support.check_choice("size", size, SIZES)
    aligned, notices = aligned_photo(photo, already_aligned)
    result = pipeline().invert(aligned.image, refine_steps=steps, size=size, progress=reporter(progress))
    face = result.faces[0]
    files = [str(OUT.save_png(face.image, "inverted")), str(OUT.save_latent(face.wplus, "inverted"))]
    similarity = round(face.scores["clip_similarity"], 4)
    return aligned.image, face.image, similarity, files, notes(notices, result.notices), remembered(face)


@user_errors
def text_to_face(prompt, seed, psi, optimize_steps, size, progress=gr.Progress()):
    prompt, notices = support.check_prompt(prompt)
    seed = support.check_number("seed", seed, 0, MAX_SEED, integer=True)
    psi = support.check_number("truncation", psi, *PSI_RANGE)
    steps = support.check_number("optimisation steps", optimize_steps, 0, MAX_STEPS, integer=True)
    size = support.check_choice("size", size, SIZES)
    result = pipeline().text_to_face(prompt, seed=seed, psi=psi, size=size, optimize_steps=steps, progress=reporter(progress))
    face = result.faces[0]
    files = [str(OUT.save_png(face.image, "text")), str(OUT.save_latent(face.wplus, "text"))]
    text_score = round(face.scores["text_score"], 4)
    return face.image, text_score, files, notes(notices, result.notices), remembered(face)


EDIT_COLUMNS = ["variant", "C", "similarity to original", "text score", "generator calls"]


@user_errors
def edit(start_from, photo, already_aligned, target, source, manual_c, with_oracle, sweep_frames, size, last, progress=gr.Progress()):
    target, notices = support.check_prompt(target, "target prompt")
    source, source_notices = support.check_prompt(source, "source prompt") if source and source.strip() else (None, [])
    manual_c = support.check_number("manual C", manual_c, 0.0, C_MAX)
    sweep_frames = support.check_number("sweep frames", sweep_frames, 0, FRAMES_RANGE[1], integer=True)
    if sweep_frames == 1:
        raise InputError(f"sweep frames must be 0 (no GIF) or {FRAMES_RANGE[0]}..{FRAMES_RANGE[1]}")
    size = support.check_choice("size", size, SIZES)
    wplus, original, start_notices = start_face(start_from, photo, already_aligned, last, size, progress)
    variants = [("manual", manual_c), ("learned", "learned")] + ([("oracle", "oracle")] if with_oracle else [])
    shown, rows, all_notices = [], [], [start_notices, notices, source_notices]
    for step, (name, strength) in enumerate(variants):
        progress(step / (len(variants) + 1), desc=f"{name} edit")
        try:
            result = pipeline().edit(wplus, target, source=source, strength=strength, size=size)
        except WeightsError as err:  # e.g. no trained strength head: the other variants still run
            shown.append(None)
            rows.append([name, None, None, None, None])
            all_notices.append([f"{name} C unavailable: {err}"])
            continue
        s = result.faces[0].scores
        shown.append(result.faces[0].image)
        rows.append([name, round(s["C"], 3), round(s["clip_similarity"], 4), round(s["text_score"], 4), int(s["generator_calls"])])
        all_notices.append(result.notices)
    gif = None
    if sweep_frames:
        progress(len(variants) / (len(variants) + 1), desc="C sweep")
        sweep = pipeline().sweep(wplus, target, source=source, c_max=C_MAX, n_frames=sweep_frames, size=256)
        gif = str(save_gif([f.image for f in sweep.faces], OUT.path("sweep", ".gif"), duration_ms=120, ping_pong=True, size=256))
        all_notices.append(sweep.notices)
    start = {"wplus": wplus.detach().cpu().numpy(), "image": original}  # the unedited face, so edits do not stack
    oracle = shown[2] if with_oracle else None
    return original, shown[0], shown[1], oracle, rows, gif, gif, notes(*all_notices), start


@user_errors
def morph(a_from, photo_a, b_from, photo_b, prompt_b, already_aligned, mode, crossover, n_frames, duration_ms, ping_pong, gif_size, last, progress=gr.Progress()):
    mode = support.check_choice("mode", mode, ["interpolate", "style mix"])
    crossover = support.check_number("crossover slot", crossover, 1, N_SLOTS - 1, integer=True)
    n_frames = support.check_number("frames", n_frames, *FRAMES_RANGE, integer=True)
    duration_ms = support.check_number("frame duration (ms)", duration_ms, *DURATION_MS, integer=True)
    gif_size = support.check_choice("GIF size", gif_size, GIF_SIZES)
    render = max(256, gif_size)
    wplus_a, _, notices_a = start_face(a_from, photo_a, already_aligned, last, render, progress)
    if support.check_choice("second face from", b_from, ["photo", "prompt"]) == "prompt":
        prompt_b, notices_b = support.check_prompt(prompt_b, "second face's prompt")
        made = pipeline().text_to_face(prompt_b, seed=0, size=render)
        wplus_b, notices_b = made.faces[0].wplus, notices_b + made.notices
    else:
        wplus_b, _, notices_b = start_face("photo", photo_b, already_aligned, None, render, progress)
    progress(0.5, desc="morphing")
    result = pipeline().morph(wplus_a, wplus_b, n_frames=n_frames, size=render, mode=mode.replace(" ", "_"), crossover=crossover)
    frames = [face.image for face in result.faces]
    gif = str(save_gif(frames, OUT.path("morph", ".gif"), duration_ms=duration_ms, ping_pong=bool(ping_pong), size=gif_size))
    mixed = frames[-1] if mode == "style mix" else None  # the last frame: a's coarse slots with b's fine ones
    return gif, gif, mixed, notes(notices_a, notices_b, result.notices)


# --- status -------------------------------------------------------------------------------------------------


def status_markdown() -> str:
    preset = PRESET
    missing = [LOAD_ERROR] if PIPELINE is None else PIPELINE.missing()
    lines = [f"**Preset:** `{preset.name}` — {preset.label}", ""]
    if missing:
        lines += ["**Missing** (the app runs without them; the features that need them say so):", ""]
        lines += [f"- {line}" for line in missing]
    else:
        lines += ["**All weights for this preset are loaded.**"]
    lines += ["", "Switch preset with `CELEBLOOK_PRESET=tiny python app.py` (no weights needed) or `CELEBLOOK_PRESET=ffhq`."]
    lines += ["", f"**Run on your device:** the models also run in your browser, on your own machine — see the README section [In the browser]({support.readme_link()})."]
    section = support.readme_section(ROOT / "README.md")
    if section:
        lines += ["", section]
    return "\n".join(lines)


def banner_markdown() -> str:
    if not PRESET.trained:
        return (
            f"### ⚠️ Untrained `{PRESET.name}` preset\n"
            "Every model here has small **random weights**: the pictures are patterns, not faces, and the scores "
            "mean nothing. It exists to try the app without downloads. See the **Status** tab for the real models."
        )
    if PIPELINE is None:
        return "### ⚠️ The models could not be loaded\nNothing can run until the weights below exist; see the **Status** tab.\n\n" + LOAD_ERROR
    if PIPELINE.missing():
        return "### ⚠️ Some weights are missing\nFeatures that need them explain what to run; see the **Status** tab."
    return ""


# --- layout -------------------------------------------------------------------------------------------------


def photo_input(label: str) -> gr.Image:
    return gr.Image(label=label, type="filepath", sources=["upload", "webcam", "clipboard"], height=280)


def size_input(value: int = 512) -> gr.Radio:
    return gr.Radio(SIZES, value=value, label="Output size (px)")


def result_image(label: str, elem_id: str | None = None) -> gr.Image:
    return gr.Image(label=label, type="pil", format="png", interactive=False, buttons=["download", "fullscreen"], elem_id=elem_id)


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="CelebrityLook", delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# CelebrityLook\nFace inversion and text-driven editing with MobileStyleGAN + CLIP.")
        banner = banner_markdown()
        gr.Markdown(banner, visible=bool(banner), elem_id="banner")
        last_face = gr.State(None)  # the latest inverted / generated face of this browser session

        with gr.Tabs():
            with gr.Tab("Invert", id="invert", elem_id="tab-invert"):
                with gr.Row():
                    with gr.Column():
                        inv_photo = photo_input("Your photo")
                        inv_aligned_flag = gr.Checkbox(False, label="Photo is already aligned (skip face detection; use the centred square)")
                        inv_steps = gr.Slider(0, MAX_STEPS, value=0, step=1, label="Refinement steps (0 = one fast pass)")
                        inv_size = size_input()
                        inv_button = gr.Button("Invert", variant="primary")
                    with gr.Column():
                        with gr.Row():
                            inv_crop = result_image("Aligned crop")
                            inv_result = result_image("Reconstruction", "invert-result")
                        inv_similarity = gr.Number(label="CLIP similarity, photo vs reconstruction", precision=4)
                        inv_files = gr.File(label="Download image (PNG) and latent (.npy)", file_count="multiple")
                        inv_notes = gr.Markdown()
                inv_button.click(
                    invert, [inv_photo, inv_aligned_flag, inv_steps, inv_size],
                    [inv_crop, inv_result, inv_similarity, inv_files, inv_notes, last_face],
                    api_name="invert", preprocess=False, **HEAVY,
                )

            with gr.Tab("Text to face", id="text", elem_id="tab-text"):
                with gr.Row():
                    with gr.Column():
                        txt_prompt = gr.Textbox(label="Prompt", placeholder="a smiling woman with red curly hair", max_lines=3)
                        txt_seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED)
                        txt_psi = gr.Slider(*PSI_RANGE, value=0.7, step=0.05, label="Truncation ψ (lower = more typical)")
                        txt_steps = gr.Slider(0, MAX_STEPS, value=0, step=1, label="CLIP optimisation steps (0 = the fast mapper)")
                        txt_size = size_input()
                        txt_button = gr.Button("Make face", variant="primary")
                    with gr.Column():
                        txt_result = result_image("Face", "text-result")
                        txt_score = gr.Number(label="Text score (CLIP similarity to the prompt)", precision=4)
                        txt_files = gr.File(label="Download image (PNG) and latent (.npy)", file_count="multiple")
                        txt_notes = gr.Markdown()
                gr.Examples(
                    [["a smiling woman with red curly hair", 1, 0.7], ["an old man with a grey beard and glasses", 7, 0.6],
                     ["a young man with a mohawk", 42, 0.8]],
                    inputs=[txt_prompt, txt_seed, txt_psi], cache_examples=False,  # filling in only: nothing runs at startup
                )
                txt_button.click(
                    text_to_face, [txt_prompt, txt_seed, txt_psi, txt_steps, txt_size],
                    [txt_result, txt_score, txt_files, txt_notes, last_face], api_name="text_to_face", **HEAVY,
                )

            with gr.Tab("Edit", id="edit", elem_id="tab-edit"):
                with gr.Row():
                    with gr.Column(scale=1):
                        edit_from = gr.Radio(["last face", "photo"], value="photo", label="Start from")
                        edit_photo = photo_input("Photo (when starting from a photo)")
                        edit_aligned_flag = gr.Checkbox(False, label="Photo is already aligned")
                        edit_target = gr.Textbox(label="Target prompt", placeholder="a face with a big smile")
                        edit_source = gr.Textbox(label="Source prompt (optional)", placeholder="a face")
                        edit_c = gr.Slider(0, C_MAX, value=0.4, step=0.01, label="Manual strength C")
                        edit_oracle = gr.Checkbox(False, label="Also search the oracle C (slow: many generator calls)")
                        edit_frames = gr.Slider(0, FRAMES_RANGE[1], value=12, step=1, label=f"C-sweep GIF frames, C from 0 to {C_MAX} (0 = none)")
                        edit_size = size_input()
                        edit_button = gr.Button("Edit", variant="primary")
                    with gr.Column(scale=2):
                        with gr.Row():
                            edit_original = result_image("Original")
                            edit_manual = result_image("Manual C")
                            edit_learned = result_image("Learned C (predicted)")
                            edit_oracle_img = result_image("Oracle C (searched)")
                        edit_table = gr.Dataframe(headers=EDIT_COLUMNS, label="C used and scores of each variant", interactive=False)
                        with gr.Row():
                            edit_gif = gr.Image(label="C sweep", type="filepath", interactive=False, elem_id="edit-gif")
                            edit_gif_file = gr.File(label="Download the GIF")
                        edit_notes = gr.Markdown()
                edit_button.click(
                    edit,
                    [edit_from, edit_photo, edit_aligned_flag, edit_target, edit_source, edit_c, edit_oracle, edit_frames, edit_size, last_face],
                    [edit_original, edit_manual, edit_learned, edit_oracle_img, edit_table, edit_gif, edit_gif_file, edit_notes, last_face],
                    api_name="edit", preprocess=False, **HEAVY,
                )

            with gr.Tab("Morph", id="morph", elem_id="tab-morph"):
                with gr.Row():
                    with gr.Column():
                        mo_a_from = gr.Radio(["last face", "photo"], value="photo", label="First face from")
                        mo_photo_a = photo_input("Your photo")
                        mo_b_from = gr.Radio(["photo", "prompt"], value="photo", label="Second face from")
                        mo_photo_b = photo_input("A friend's or a celebrity's photo")
                        mo_prompt_b = gr.Textbox(label="…or a celebrity prompt", placeholder="a famous actress with short blond hair")
                        mo_aligned_flag = gr.Checkbox(False, label="Photos are already aligned")
                    with gr.Column():
                        mo_mode = gr.Radio(["interpolate", "style mix"], value="interpolate", label="Mode",
                                           info="style mix: coarse slots (pose, shape) from the first face, fine slots (colour, texture) from the second")
                        mo_crossover = gr.Slider(1, N_SLOTS - 1, value=8, step=1, label="Style-mix crossover slot")
                        mo_frames = gr.Slider(*FRAMES_RANGE, value=12, step=1, label="Frames")
                        mo_duration = gr.Slider(*DURATION_MS, value=100, step=10, label="Frame duration (ms)")
                        mo_ping_pong = gr.Checkbox(True, label="Ping-pong loop")
                        mo_size = gr.Radio(GIF_SIZES, value=256, label="GIF size (px)")
                        mo_button = gr.Button("Morph", variant="primary")
                    with gr.Column():
                        mo_gif = gr.Image(label="Morph", type="filepath", interactive=False, elem_id="morph-gif")
                        mo_gif_file = gr.File(label="Download the GIF")
                        mo_mixed = result_image("Style mix")
                        mo_notes = gr.Markdown()
                mo_button.click(
                    morph,
                    [mo_a_from, mo_photo_a, mo_b_from, mo_photo_b, mo_prompt_b, mo_aligned_flag, mo_mode, mo_crossover,
                     mo_frames, mo_duration, mo_ping_pong, mo_size, last_face],
                    [mo_gif, mo_gif_file, mo_mixed, mo_notes], api_name="morph", preprocess=False, **HEAVY,
                )

            with gr.Tab("Random", id="random", elem_id="tab-random"):
                with gr.Row():
                    rnd_seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED - MAX_FACES)
                    rnd_count = gr.Slider(1, MAX_FACES, value=4, step=1, label="Faces")
                    rnd_psi = gr.Slider(*PSI_RANGE, value=0.7, step=0.05, label="Truncation ψ")
                    rnd_size = gr.Radio(SIZES, value=256, label="Size (px)")
                rnd_button = gr.Button("Random faces", variant="primary")
                rnd_gallery = gr.Gallery(label="Faces (seed, seed+1, …)", columns=4, format="png", elem_id="random-gallery")
                rnd_notes = gr.Markdown()
                rnd_button.click(
                    random_face, [rnd_seed, rnd_count, rnd_psi, rnd_size], [rnd_gallery, rnd_notes, last_face],
                    api_name="random_face", **HEAVY,
                )

            with gr.Tab("Status", id="status", elem_id="tab-status"):
                gr.Markdown(status_markdown())

    demo.queue(max_size=32, default_concurrency_limit=1)
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.launch(max_file_size="30mb", allowed_paths=[str(ROOT / "README.md")])  # README: the Status tab links it
