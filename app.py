"""CelebrityLook web app: invert a photo, make a face from text, edit it with a prompt, morph two faces.

Layout and wiring only: every request goes to ``celeblook.pipeline.Pipeline`` (which loads and aligns
photos, checks every value against ``pipeline.limits`` and runs the models); ``celeblook.app_support``
decides which uploads may be opened, writes the files handed out and escapes user text.

    CELEBLOOK_PRESET=tiny bash dev.sh app     # no weights needed (untrained random models, labelled as such)
    bash dev.sh app                           # the real models; without their weights, tiny and a banner saying why
    CELEBLOOK_PRESET=ffhq bash dev.sh app     # the real models or nothing: missing weights are listed in the Status tab
"""

from __future__ import annotations

import functools
import html
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.context import LocalContext
from gradio.data_classes import ImageData
from gradio.utils import get_upload_folder
from pydantic import ConfigDict, ValidationError, model_validator

from celeblook import app_support as support
from celeblook.clips import check_format, encode_clip
from celeblook.errors import CelebError, WeightsError
from celeblook.hub.first_run import app_preset
from celeblook.limits import C_MAX, QUEUE_SIZE, SESSION_TTL_S, SESSIONS, Choice, Limits, Range, check_flag
from celeblook.photo.identity import SAME_PERSON
from celeblook.photo.load import release_freed_memory
from celeblook.pipeline import (
    EditRequest,
    Face,
    InvertRequest,
    MorphRequest,
    PhotoStart,
    Pipeline,
    PromptStart,
    RandomRequest,
    Request,
    SweepRequest,
    TextRequest,
)
from celeblook.pipeline.requests import limit_of
from celeblook.presets import DEFAULT_PRESET
from celeblook.remedy import remedy

ROOT = Path(__file__).resolve().parent
# first run: fetch and convert the preset's public weights (progress in the terminal), or say what is missing; with
# no preset asked for and the default's weights out of reach, FALLBACK says why the app runs on tiny instead
PRESET, WEIGHT_NOTICES, FALLBACK = app_preset()
LIMITS = Limits.of(PRESET.generator)  # the controls' ranges: what the pipeline accepts
try:
    PIPELINE: Pipeline | None = Pipeline.from_pretrained(PRESET)  # loaded once, shared read-only by every request
    LOAD_ERROR = None
except WeightsError as err:  # e.g. no generator weights yet: start anyway and say what to run
    PIPELINE, LOAD_ERROR = None, str(err)
UPLOADS = get_upload_folder()  # where Gradio keeps what clients uploaded (and serves files from)
OUT = support.OutputDir(Path(UPLOADS) / "celeblook")  # inside it, so results are served without a copy
if PIPELINE is not None and not PIPELINE.has_mapper:  # every request takes a slow path: time one step now, so each
    threading.Thread(target=PIPELINE.calibrate, daemon=True).start()  # says how long it will take before it starts
# Two lanes, one request at a time in each: slow work (refinement, CLIP-guided optimisation, the oracle, paths
# without a mapper) never makes a quick request wait behind it. At most QUEUE_SIZE requests wait for a lane; more
# are refused at once (Gradio's own queue hands every event straight to a thread: the lanes are where they wait).
LANES = {"fast": threading.Semaphore(1), "slow": threading.Semaphore(1)}
WAITING = threading.BoundedSemaphore(QUEUE_SIZE)
BUSY = f"the server is busy: {QUEUE_SIZE} requests are already waiting; try again in a minute"
PHOTO_TYPES = ["upload", "webcam", "clipboard"]
START_FROM = Choice("start from", ("last face", "photo"))
SECOND_FROM = Choice("second face from", ("photo", "prompt"))


def refiner_iterations() -> int:
    """The installed refiner's own iteration count; 0 without one (the mapper's answer alone)."""
    return PIPELINE.engine.refiner_iterations if PIPELINE is not None and PIPELINE.engine.has("refiner") else 0


def pipeline() -> Pipeline:
    if PIPELINE is None:
        raise WeightsError(LOAD_ERROR)
    return PIPELINE


@contextmanager
def lane(slow: bool):
    """The request's lane, once it is free; while it is taken the request waits, as one of at most QUEUE_SIZE."""
    chosen = LANES["slow" if slow else "fast"]
    if not chosen.acquire(blocking=False):
        if not WAITING.acquire(blocking=False):
            raise CelebError(BUSY)
        try:
            chosen.acquire()
        finally:
            WAITING.release()
    try:
        yield
    finally:
        chosen.release()


def needs_slow_lane(steps: int = 0, oracle: bool = False) -> bool:
    """Slow work: optimisation steps (of a checked request), the oracle's search, or anything without a trained mapper."""
    return oracle or PIPELINE is None or not PIPELINE.has_mapper or steps > 0


# --- glue ---------------------------------------------------------------------------------------------------


class Failures:
    """The last error of each (browser session, action), kept until the page asks for it to show it beside the
    action's button. API callers never ask (they read the error itself), so at most SESSIONS are kept."""

    def __init__(self, capacity: int = SESSIONS):
        self.capacity, self.lock, self.messages = capacity, threading.Lock(), OrderedDict()

    def record(self, action: str, message: str) -> None:
        request = LocalContext.request.get(None)
        if request is None or not request.session_hash:
            return
        with self.lock:
            self.messages[request.session_hash, action] = message
            while len(self.messages) > self.capacity:
                self.messages.popitem(last=False)

    def take(self, action: str, request: gr.Request) -> str:
        with self.lock:
            return self.messages.pop((request.session_hash, action), "the request failed unexpectedly: try again")


FAILURES = Failures()


def endpoint(handler):
    """Every request: CelebErrors (bad input, missing weights) become a one-line gr.Error in plain words (an API
    caller reads it as it is: nothing is escaped in it); the page shows it beside the action's button (see
    on_click), not as a toast over the results. Afterwards the memory the request freed goes back to the system,
    or glibc's per-thread arenas would keep the peak of every worker thread and the server would grow with each
    request."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except CelebError as err:
            FAILURES.record(handler.__name__, str(err))
            raise gr.Error(str(err), print_exception=False, visible=False) from None
        finally:
            release_freed_memory()

    return wrapped


def notes(*notice_lists: list[str]) -> str:
    """The request's notices for its tab's notes box, one a line, as plain text (the box shows text, not markup, so
    what a user typed needs no escaping and an API caller reads it as it is); no toasts, which covered results."""
    return "\n".join(dict.fromkeys(n for notices in notice_lists for n in notices))  # each model's notice once


def reporter(progress: gr.Progress):
    return lambda fraction, message="": progress(fraction, desc=message)


def photo_start(payload: object, aligned: object, face: object = 0, label: str = "the photo") -> PhotoStart:
    """Only files Gradio's upload received are read: any other path named in a request is refused."""
    return PhotoStart(support.uploaded_file(payload, demo.upload_file_set), aligned, face, label)


def start_from(choice: object, payload: object, aligned: object, face: object, last: np.ndarray | None) -> PhotoStart | np.ndarray:
    """What an edit or morph starts from: the session's last face (its W+ latent), or a photo."""
    if START_FROM.check(choice) == "last face":
        if last is None:
            raise CelebError("no face yet in this session: make one in another tab, or choose 'photo' and upload one")
        return last
    return photo_start(payload, aligned, face)


def identity(face: Face) -> tuple[float | None, list[str]]:
    """(the identity distance for a number output, or None; the line that explains it)."""
    if face.identity is None:
        return None, []
    return (None if face.identity.distance is None else round(face.identity.distance, 4)), [face.identity.describe()]


def faces_found(result) -> list[tuple[str, str]]:
    """The detected faces of a photo as a gallery: thumbnails captioned with the index a request picks."""
    if result.photo is None or not result.photo.aligned.faces:
        return []
    chosen = result.photo.aligned.chosen
    return [(str(OUT.save_png(thumb, "found")), f"face {i}" + (" (used)" if i == chosen else ""))
            for i, thumb in enumerate(result.photo.thumbnails())]


def png(face: Face, stem: str) -> str:
    return str(OUT.save_png(face.image, stem))


def clip(faces: list[Face], stem: str, clip_format: str = "gif", duration_ms: int = 120, ping_pong: bool = True,
         size: int = 256) -> tuple[str | None, str, list[str]]:
    """(the GIF's path for the image preview, None for a video; the clip's path; notices: e.g. made smaller than asked
    to stay under the byte cap)."""
    made = encode_clip([f.image for f in faces], clip_format, duration_ms, ping_pong, size)
    path = str(OUT.write(made.data, stem, made.suffix))
    return (path if made.format == "gif" else None), path, made.notices


def video_preview(path: str | None) -> dict:
    """The clip file just made, shown in the video player when it is a video (the image shows a GIF)."""
    video = bool(path) and Path(path).suffix in (".mp4", ".webm")
    return gr.update(value=path if video else None, visible=video)


def downloads(face: Face, stem: str) -> list[str]:
    return [png(face, stem), str(OUT.save_latent(face.wplus, stem))]


# --- handlers (also the API: see README.md, "Calling it from Python") ----------------------------------------------


@endpoint
def random_face(seed, count, psi, size, progress=gr.Progress()):
    request = RandomRequest.checked(LIMITS, seed, count, psi, size)
    with lane(False):
        result = pipeline().random_faces(request)
    gallery = [(png(face, f"seed{int(face.scores['seed'])}"), f"seed {int(face.scores['seed'])}") for face in result.faces]
    return gallery, notes(result.notices), result.faces[0].wplus


@endpoint
def invert(photo, already_aligned, face_index, refine_steps, size, refine_iterations=None, progress=gr.Progress()):
    request = InvertRequest.checked(LIMITS, photo_start(photo, already_aligned, face_index), refine_steps, size,
                                    refine_iterations)
    with lane(needs_slow_lane(request.refine_steps)):
        result = pipeline().invert(request, progress=reporter(progress))
    face = result.faces[0]
    crop, pasted = str(OUT.save_png(result.crop, "crop")), str(OUT.save_png(face.pasted, "in-photo"))
    distance, identity_notes = identity(face)
    return (png(face, "inverted"), pasted, crop, faces_found(result), round(face.scores["clip_similarity"], 4), distance,
            downloads(face, "inverted"), notes(result.notices, identity_notes), face.wplus)


@endpoint
def text_to_face(prompt, seed, psi, optimize_steps, size, progress=gr.Progress()):
    request = TextRequest.checked(LIMITS, prompt, seed, psi, size, optimize_steps)
    with lane(needs_slow_lane(request.optimize_steps)):
        result = pipeline().text_to_face(request, progress=reporter(progress))
    face = result.faces[0]
    return png(face, "text"), round(face.scores["text_score"], 4), downloads(face, "text"), notes(result.notices), face.wplus


EDIT_COLUMNS = ["variant", "C", "similarity", "text score", "identity", "G calls"]
EDIT_COLUMN_WIDTHS = ["17%", "12%", "23%", "15%", "17%", "16%"]  # each column its longest word or number (phone size)


@endpoint
def edit(start_choice, photo, already_aligned, face_index, target, source, manual_c, with_oracle, sweep_frames, size, last,
         clip_format="gif", progress=gr.Progress()):
    with_oracle = check_flag("oracle", with_oracle)
    sweep_frames = LIMITS.sweep_frames(sweep_frames)
    clip_format = check_format(clip_format) if sweep_frames else None
    start = start_from(start_choice, photo, already_aligned, face_index, last)
    strengths = (manual_c, "learned") + (("oracle",) if with_oracle else ())
    request = EditRequest.checked(LIMITS, start, target, source, strengths, size)
    sweep, all_notices = None, []
    with lane(needs_slow_lane(oracle=with_oracle)):
        result = pipeline().edit(request, progress=reporter(progress))
        if sweep_frames:
            try:  # the edit's face and direction: no prompt is encoded again
                sweep = pipeline().sweep(SweepRequest(result, c_max=C_MAX, n_frames=sweep_frames, size=256))
            except WeightsError as err:  # no mapper: the edits above took the slow path, a sweep would take minutes
                all_notices.append([f"C sweep unavailable: {err}"])
    images, rows, in_photo = {}, [], []
    all_notices.insert(0, result.notices)
    for variant in result.variants:
        face = variant.face
        all_notices.append(variant.notices)
        if face is None:
            images[variant.name] = None
            rows.append([variant.name] + [None] * (len(EDIT_COLUMNS) - 1))
            continue
        images[variant.name] = png(face, f"edit-{variant.name}")
        distance, identity_notes = identity(face)
        s = face.scores
        rows.append([variant.name, round(s["C"], 3), round(s["clip_similarity"], 4), round(s["text_score"], 4), distance,
                     int(s["generator_calls"])])
        all_notices.append([f"{variant.name}: {line}" for line in identity_notes])
        if face.pasted is not None:
            in_photo.append((str(OUT.save_png(face.pasted, f"in-photo-{variant.name}")), f"{variant.name} C in your photo"))
    sweep_gif = sweep_file = None
    if sweep:
        sweep_gif, sweep_file, clip_notices = clip(sweep.faces, "sweep", clip_format)
        all_notices += [sweep.notices, clip_notices]
    return (png(result.original, "original"), images["manual"], images["learned"], images.get("oracle"), rows, in_photo,
            sweep_gif, sweep_file, notes(*all_notices), result.original.wplus)


@endpoint
def morph(a_from, photo_a, a_aligned, a_face, b_from, photo_b, b_aligned, b_face, prompt_b, mode, crossover, n_frames,
          duration_ms, ping_pong, gif_size, last, clip_format="gif", progress=gr.Progress()):
    gif_size = LIMITS.gif_size.check(gif_size)
    clip_format = check_format(clip_format)  # before the frames are made: a video without PyAV is refused at once
    duration_ms, ping_pong = LIMITS.frame_ms.check(duration_ms), check_flag("ping-pong", ping_pong)
    first = start_from(a_from, photo_a, a_aligned, a_face, last)
    if SECOND_FROM.check(b_from) == "prompt":
        second = PromptStart(prompt_b)
    else:
        second = photo_start(photo_b, b_aligned, b_face, label="the second photo")
    request = MorphRequest.checked(LIMITS, first, second, n_frames, max(256, gif_size), mode, crossover)
    with lane(needs_slow_lane()):
        result = pipeline().morph(request, progress=reporter(progress))
    preview, path, clip_notices = clip(result.faces, "morph", clip_format, duration_ms, ping_pong, gif_size)
    style_mix = str(mode).replace(" ", "_") == "style_mix"
    mixed = png(result.faces[-1], "style-mix") if style_mix else None  # a's coarse slots with b's fine ones
    ends = [f"{which} frame: {face.identity.describe()}" for which, face in (("first", result.faces[0]), ("last", result.faces[-1]))
            if face.identity is not None]
    return preview, path, mixed, notes(result.notices, clip_notices, ends)


# --- status -------------------------------------------------------------------------------------------------


BROWSER_EDITION = (
    "The same models run in your browser, on your own device, in CelebrityLook's free static edition: every feature "
    "without a server, nothing uploaded, and it keeps working offline once loaded. On your own computer this app "
    "runs with `bash dev.sh app` in a checkout of the repository (`CELEBLOOK_PRESET=tiny` needs no downloads).")


def status_markdown() -> str:
    """What a person using the app wants to know: which models answer, what is missing and the one command for it."""
    missing = [LOAD_ERROR] if PIPELINE is None else PIPELINE.missing()
    lines = [f"**Models:** `{PRESET.name}`" + ("" if PRESET.trained else " (untrained random weights)"), ""]
    if not PRESET.trained:
        lines += ["These models have random weights: the pictures are patterns, not faces, and the scores mean nothing. "
                  f"The real models' weights come with `{remedy('weights', DEFAULT_PRESET)}`; then restart the app.", ""]
    elif missing:
        lines += ["**Missing** (the app runs without them; the features that need them say so):", ""]
        lines += [support.text_block(*map(str, missing), bullets=True)]
    else:
        lines += ["**Every model of this preset is loaded and trained.**"]
    if WEIGHT_NOTICES:
        lines += ["", "**Weights at start:**", "", support.text_block(*WEIGHT_NOTICES, bullets=True)]
    lines += ["", "**Limits:** one quick request and one slow request (refinement, CLIP-guided optimisation, the oracle C) "
              f"run at a time, so a slow one never holds up a quick one; up to {QUEUE_SIZE} more wait for their turn, "
              "and further ones are refused at once."]
    lines += ["", "## Run it on your own device", "", BROWSER_EDITION]
    return "\n".join(lines)


def banner_markdown() -> str:
    if FALLBACK is not None:  # markup: the reason is escaped here, where it is rendered
        return (
            f"### ⚠️ Showing untrained demo models: the real `{DEFAULT_PRESET}` weights could not be had\n"
            f"{support.text_block('Why: ' + FALLBACK)}\n"
            f"So the app runs the `{PRESET.name}` preset: small models with **random weights**, so the pictures are "
            "patterns, not faces, and the scores mean nothing, but every button works. To get the real models run "
            f"`{remedy('weights', DEFAULT_PRESET)}` and restart the app."
        )
    if not PRESET.trained:
        return (
            f"### ⚠️ Untrained `{PRESET.name}` preset\n"
            "Every model here has small **random weights**: the pictures are patterns, not faces, and the scores "
            "mean nothing. It exists to try the app without downloads. See the **Status** tab for the real models."
        )
    if PIPELINE is None:
        return ("### ⚠️ The models could not be loaded\nNothing can run until the weights below exist; see the **Status** tab.\n\n"
                + support.text_block(LOAD_ERROR))
    if PIPELINE.missing():
        return "### ⚠️ Some weights are missing\nFeatures that need them explain what to run; see the **Status** tab."
    return ""


# --- layout -------------------------------------------------------------------------------------------------

# Gradio's default theme with text that passes WCAG AA contrast (its orange accent and grey hints did not), the
# system's fonts (nothing fetched from a font CDN) and its light or dark look from the system setting.
THEME = gr.themes.Default(
    primary_hue="indigo", neutral_hue="slate",
    font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"], font_mono=["ui-monospace", "monospace"],
).set(
    color_accent="*primary_600",
    body_text_color_subdued="*neutral_600", body_text_color_subdued_dark="*neutral_400",
    button_primary_background_fill="*primary_600", button_primary_background_fill_dark="*primary_600",
    button_primary_background_fill_hover="*primary_700", button_primary_background_fill_hover_dark="*primary_700",
    button_primary_text_color="white", button_primary_text_color_dark="white",
)

# The score table fits a phone without breaking a word or a number (only spaces break its headers); the faces
# found keep 4 columns even for one face (Gradio widens a lone tile past the gallery's height, cutting its caption
# off), and the gallery grows with its rows; the chosen tab is readable in dark mode (the accent is dark there); an
# action's error sits under its button, in the theme's error colour, and not as an "Error" mark over each of its
# outputs as well (Gradio's own, which covered them).
CSS = """
.result-table .header-cell, .result-table .body-cell { font-family: var(--font); font-variant-numeric: tabular-nums; }
.result-table .header-cell * { white-space: normal !important; overflow-wrap: normal !important; word-break: keep-all !important; }
.result-table .body-cell * { white-space: nowrap !important; }
@media (max-width: 480px) {
  .result-table .header-cell, .result-table .body-cell { padding: 4px 2px !important; font-size: 12px !important; }
  .result-table .header-cell { font-size: 11px !important; }
  .result-table .cell-wrap { padding: 0 !important; }
}
.dark [role=tab][aria-selected=true] { color: var(--primary-300); }
#invert-faces .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)) !important; }
[role=tabpanel] .wrap:has(> span.error) { display: none !important; }
.action-error * { padding: 0; }
.action-error p { margin: 0; padding: 0.5rem 0.75rem; border-radius: var(--radius-md); font-weight: 600;
  color: var(--error-text-color); background: var(--error-background-fill); border: 1px solid var(--error-border-color); }
"""


class PhotoPayload(ImageData):
    """gr.Image's payload, except that a malformed one (``""``, ``123``, ``{"path": 5}``) reaches the handler as a
    payload without a path, which it answers with the app's own line, instead of failing Gradio's validation
    before the handler, which answers with an empty error."""

    model_config = ConfigDict(title="ImageData")  # the API page shows the same type

    @model_validator(mode="wrap")
    @classmethod
    def _malformed_names_no_file(cls, value: object, handler):
        try:
            return handler(value)
        except ValidationError:
            return cls()


def photo_input(label: str, elem_id: str | None = None) -> gr.Image:
    image = gr.Image(label=label, type="filepath", sources=PHOTO_TYPES, height=240, elem_id=elem_id)
    image.data_model = PhotoPayload
    return image


def face_input(label: str = "Face (0 = the largest found; the numbers are under 'faces found')") -> gr.Number:
    return gr.Number(0, label=label, precision=0, minimum=LIMITS.face_index.low, maximum=LIMITS.face_index.high)


# (verb, field) -> the control made from that request field (tests compare each with the field)
CONTROLS: dict[tuple[str, str], gr.components.Component] = {}


def control(request: type[Request], name: str, value: object = None, step: float = 0.05, **options) -> gr.components.Component:
    """The control of a request's field, made from it: its limit's range or options, its label, its help as info and
    its default as the value, unless ``value``; ``options`` go to the component (a narrower ``maximum``)."""
    f = request.params()[name]
    limit = limit_of(f, LIMITS)
    options = {"label": f.metadata["label"], "info": f.metadata["help"], "value": f.default if value is None else value,
               **options}
    if isinstance(limit, Choice):  # shown as people write them ("style mix"), sent as the request's values
        made = gr.Radio([(str(o).replace("_", " "), o) for o in limit.options], **options)
    elif isinstance(limit, Range) and name == "seed":  # billions of values: typed, not slid
        made = gr.Number(**{"precision": 0, "minimum": limit.low, "maximum": limit.high, **options})
    else:
        made = gr.Slider(limit.low, limit.high, step=1 if limit.integer else step, **options)
    CONTROLS[(request.verb, name)] = made
    return made


def result_image(label: str, elem_id: str | None = None, visible: bool = True) -> gr.Image:
    return gr.Image(label=label, type="filepath", interactive=False, buttons=["download", "fullscreen"],
                    elem_id=elem_id, visible=visible)


def format_input(label: str = "Format") -> gr.Radio:
    return gr.Radio(list(LIMITS.clip_format.options), value="gif", label=label,
                    info="mp4 (H.264) and webm (VP9): the same frames in a fraction of a GIF's bytes")


def clip_video(label: str, elem_id: str) -> gr.Video:
    """The preview of a video clip (a GIF shows in its image): looping like the GIF, hidden until there is one."""
    return gr.Video(label=label, interactive=False, autoplay=True, loop=True, visible=False, elem_id=elem_id)


def notes_box(elem_id: str) -> gr.Textbox:
    """A tab's notes: plain text (nothing in it is read as markup), replaced by each request of the tab."""
    return gr.Textbox(label="Notes", interactive=False, lines=1, max_lines=20, elem_id=elem_id)


def action_button(label: str) -> tuple[gr.Button, gr.HTML]:
    """An action's button and, right under it, where its error shows (hidden until there is one): on a phone the
    message is next to the button pressed, not a toast over the results or a screen away."""
    button = gr.Button(label, variant="primary")
    return button, gr.HTML("", visible=False, elem_classes="action-error", padding=False)


def error_html(message: str) -> dict:
    return gr.update(value=f'<p role="alert">{html.escape(message)}</p>', visible=True)


def on_click(button: gr.Button, error: gr.HTML, handler, inputs: list, outputs: list, api_name: str) -> None:
    """``button`` runs ``handler`` (the API's ``api_name``); first, at once, the tab's previous results, notes and
    error are cleared, so nothing of an earlier request stays on show next to a new one, a failed one included.
    A failure's message then shows in ``error``, under the button."""
    shown = [o for o in outputs if not isinstance(o, gr.State)]

    def show_failure(request: gr.Request) -> dict:
        return error_html(FAILURES.take(handler.__name__, request))

    button.click(lambda: [None] * len(shown) + [gr.update(value="", visible=False)], None, shown + [error], queue=False,
                 api_visibility="private").then(
        handler, inputs, outputs, api_name=api_name, **EVENT).failure(
        show_failure, None, error, queue=False, api_visibility="private")


def slider(limit, value, label: str, step: float = 1, **kwargs) -> gr.Slider:
    """A control of an app-only limit (the GIF's frame time): not a request field."""
    return gr.Slider(limit.low, limit.high, value=value, step=step, label=label, **kwargs)


def shown_when(controls: gr.components.Component | list[gr.components.Component], rule,
               *outputs: gr.components.Component) -> None:
    """Show ``outputs`` only while ``rule(each control's value)`` holds, checked again whenever one changes: no
    empty placeholders (UI only, not in the API)."""
    controls = controls if isinstance(controls, list) else [controls]

    def toggle(*values):
        visible = bool(rule(*values))
        return [gr.update(visible=visible)] * len(outputs) if len(outputs) > 1 else gr.update(visible=visible)

    for control in controls:
        control.change(toggle, controls, list(outputs), queue=False, api_visibility="private")


# Handlers check every value themselves (the pipeline's limits), so API clients get the app's own one-line
# messages; Gradio's preprocessing would answer wrong types with a generic error and open uploaded files itself.
EVENT = dict(preprocess=False, concurrency_limit=None)


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="CelebrityLook", delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# CelebrityLook\nFace inversion and text-driven editing with MobileStyleGAN + CLIP.")
        banner = banner_markdown()
        gr.Markdown(banner, visible=bool(banner), elem_id="banner")
        # the W+ latent (23, 512) of this session's latest inverted / generated face: 47 KB a session, not its images;
        # forgotten SESSION_TTL_S after it was made, or with the session when SESSIONS others were used since (LAUNCH)
        last_face = gr.State(None, time_to_live=SESSION_TTL_S)

        with gr.Tabs():
            with gr.Tab("Invert", id="invert", elem_id="tab-invert"):
                with gr.Row():
                    with gr.Column():
                        inv_photo = photo_input("Your photo")
                        inv_button, inv_error = action_button("Invert")
                        with gr.Accordion("Options", open=False):
                            inv_aligned_flag = gr.Checkbox(
                                False, label="Photo is already aligned (skip face detection; use the centred square)")
                            inv_face = face_input()
                            inv_steps = control(InvertRequest, "refine_steps")
                            inv_size = control(InvertRequest, "size", 512)
                            # the learned refiner's steps, at its own count; shown only where one is installed
                            inv_iterations = control(InvertRequest, "refine_iterations", refiner_iterations(),
                                                     visible=bool(refiner_iterations()))
                    with gr.Column():
                        with gr.Row():
                            inv_result = result_image("Reconstruction", "invert-result")
                            inv_pasted = result_image("In your photo", "invert-pasted")
                        with gr.Row():
                            inv_similarity = gr.Number(label="CLIP similarity, photo vs reconstruction", precision=4)
                            inv_identity = gr.Number(label=f"Identity distance (below {SAME_PERSON}: same person)", precision=4)
                        inv_files = gr.File(label="Download image (PNG) and latent (.npy)", file_count="multiple")
                        inv_notes = notes_box("invert-notes")
                        with gr.Accordion("Aligned crop and the faces found", open=False):
                            inv_crop = result_image("Aligned crop")
                            inv_faces = gr.Gallery(label="Faces found (pick one by its number in Options)", columns=4,
                                                   height="auto", object_fit="contain", elem_id="invert-faces")
                on_click(
                    inv_button, inv_error, invert, [inv_photo, inv_aligned_flag, inv_face, inv_steps, inv_size, inv_iterations],
                    [inv_result, inv_pasted, inv_crop, inv_faces, inv_similarity, inv_identity, inv_files, inv_notes, last_face],
                    api_name="invert",
                )

            with gr.Tab("Text to face", id="text", elem_id="tab-text"):
                with gr.Row():
                    with gr.Column():
                        txt_prompt = gr.Textbox(label=TextRequest.params()["prompt"].metadata["label"],
                                                placeholder="a smiling woman with red curly hair", max_lines=3)
                        txt_button, txt_error = action_button("Make face")
                        with gr.Accordion("Options", open=False):
                            txt_seed = control(TextRequest, "seed")
                            txt_psi = control(TextRequest, "psi")
                            txt_steps = control(TextRequest, "optimize_steps")
                            txt_size = control(TextRequest, "size", 512)
                    with gr.Column():
                        txt_result = result_image("Face", "text-result")
                        txt_score = gr.Number(label="Text score (CLIP similarity to the prompt)", precision=4)
                        txt_files = gr.File(label="Download image (PNG) and latent (.npy)", file_count="multiple")
                        txt_notes = notes_box("text-notes")
                examples = [["a smiling woman with red curly hair", 1, 0.7], ["an old man with a grey beard and glasses", 7, 0.6],
                            ["a young man with a mohawk", 42, 0.8]]
                gr.Examples(  # labelled buttons, not a table: a table's headers were cut off on a phone
                    examples, inputs=[txt_prompt, txt_seed, txt_psi], cache_examples=False,  # filling in only: nothing runs
                    example_labels=[f"{prompt} (seed {seed}, ψ {psi})" for prompt, seed, psi in examples],
                )
                on_click(
                    txt_button, txt_error, text_to_face, [txt_prompt, txt_seed, txt_psi, txt_steps, txt_size],
                    [txt_result, txt_score, txt_files, txt_notes, last_face], api_name="text_to_face",
                )

            with gr.Tab("Edit", id="edit", elem_id="tab-edit"):
                with gr.Row():
                    with gr.Column(scale=1):
                        edit_from = gr.Radio(list(START_FROM.options), value="photo", label="Start from")
                        edit_photo = photo_input("Photo", "edit-photo")
                        edit_target = gr.Textbox(label=EditRequest.params()["target"].metadata["label"],
                                                 placeholder="a face with a big smile")
                        edit_c = gr.Slider(0, C_MAX, value=0.4, step=0.01, label="Manual strength C")
                        edit_button, edit_error = action_button("Edit")
                        with gr.Accordion("Options", open=False):
                            edit_aligned_flag = gr.Checkbox(False, label="Photo is already aligned")
                            edit_face = face_input()
                            edit_source = gr.Textbox(label=EditRequest.params()["source"].metadata["label"], placeholder="a face")
                            edit_oracle = gr.Checkbox(False, label="Also search the oracle C (slow: many generator calls)")
                            edit_frames = gr.Slider(0, LIMITS.frames.high, value=12, step=1,
                                                    label=f"C-sweep GIF frames, C from 0 to {C_MAX} (0 = none)")
                            edit_size = control(EditRequest, "size", 512)
                            edit_format = format_input("C-sweep format")
                    with gr.Column(scale=2):
                        with gr.Row():
                            edit_manual = result_image("Manual C", "edit-manual")
                            edit_learned = result_image("Learned C (predicted)")
                            edit_oracle_img = result_image("Oracle C (searched)", visible=False)
                            edit_original = result_image("Original")
                        edit_table = gr.Dataframe(headers=EDIT_COLUMNS, label=f"C used and scores of each variant "
                                                  f"(identity: below {SAME_PERSON} = same person)",
                                                  interactive=False, wrap=True, elem_classes="result-table", elem_id="edit-table",
                                                  column_widths=EDIT_COLUMN_WIDTHS)
                        edit_in_photo = gr.Gallery(label="In your photo", columns=3, height=240, elem_id="edit-in-photo")
                        with gr.Row():
                            edit_gif = gr.Image(label="C sweep", type="filepath", interactive=False, elem_id="edit-gif")
                            edit_gif_file = gr.File(label="Download the clip")
                            edit_video = clip_video("C sweep", "edit-video")
                        edit_notes = notes_box("edit-notes")
                shown_when(edit_oracle, lambda oracle: bool(oracle), edit_oracle_img)
                # starting from the last face, the photo is not used: hidden (the "Original" result shows the face used)
                shown_when(edit_from, lambda choice: choice == "photo", edit_photo)
                shown_when(edit_frames, lambda frames: frames not in (0, None), edit_gif_file)
                # a video sweep shows in edit_video (video_preview), as the Morph tab's
                shown_when([edit_frames, edit_format], lambda frames, clip_format: frames not in (0, None) and clip_format == "gif",
                           edit_gif)
                edit_gif_file.change(video_preview, edit_gif_file, edit_video, queue=False, api_visibility="private")
                on_click(
                    edit_button, edit_error, edit,
                    [edit_from, edit_photo, edit_aligned_flag, edit_face, edit_target, edit_source, edit_c, edit_oracle, edit_frames,
                     edit_size, last_face, edit_format],
                    [edit_original, edit_manual, edit_learned, edit_oracle_img, edit_table, edit_in_photo, edit_gif, edit_gif_file,
                     edit_notes, last_face],
                    api_name="edit",
                )

            with gr.Tab("Morph", id="morph", elem_id="tab-morph"):
                with gr.Row():
                    with gr.Column():
                        mo_a_from = gr.Radio(list(START_FROM.options), value="photo", label="First face from")
                        mo_photo_a = photo_input("Your photo")
                        mo_a_aligned = gr.Checkbox(False, label="Your photo is already aligned")
                        mo_b_from = gr.Radio(list(SECOND_FROM.options), value="photo", label="Second face from")
                        mo_photo_b = photo_input("A friend's or a celebrity's photo", "morph-photo-b")
                        mo_b_aligned = gr.Checkbox(False, label="The second photo is already aligned")
                        mo_prompt_b = gr.Textbox(label="Celebrity prompt", placeholder="a famous actress with short blond hair",
                                                 visible=False)
                        mo_button, mo_error = action_button("Morph")
                        with gr.Accordion("Options", open=False):
                            with gr.Row():
                                mo_a_face = face_input("Face in your photo")
                                mo_b_face = face_input("Face in the second photo")
                            mo_mode = control(MorphRequest, "mode")
                            mo_crossover = control(MorphRequest, "crossover")
                            mo_frames = control(MorphRequest, "n_frames", 12)
                            mo_duration = slider(LIMITS.frame_ms, 100, "Frame duration (ms)", 10)
                            mo_ping_pong = gr.Checkbox(True, label="Ping-pong loop")
                            mo_size = gr.Radio(list(LIMITS.gif_size.options), value=256, label="GIF size (px)")
                            mo_format = format_input()
                    with gr.Column():
                        mo_gif = gr.Image(label="Morph", type="filepath", interactive=False, elem_id="morph-gif")
                        mo_gif_file = gr.File(label="Download the clip")
                        mo_video = clip_video("Morph", "morph-video")
                        mo_mixed = result_image("Style mix", visible=False)
                        mo_notes = notes_box("morph-notes")
                shown_when(mo_mode, lambda mode: mode == "style_mix", mo_mixed)
                mo_gif_file.change(video_preview, mo_gif_file, mo_video, queue=False, api_visibility="private")
                shown_when(mo_format, lambda clip_format: clip_format == "gif", mo_gif)  # a video shows in mo_video
                shown_when(mo_a_from, lambda choice: choice == "photo", mo_photo_a, mo_a_aligned)  # only what is used shows
                shown_when(mo_b_from, lambda choice: choice == "photo", mo_photo_b, mo_b_aligned)
                shown_when(mo_b_from, lambda choice: choice == "prompt", mo_prompt_b)
                on_click(
                    mo_button, mo_error, morph,
                    [mo_a_from, mo_photo_a, mo_a_aligned, mo_a_face, mo_b_from, mo_photo_b, mo_b_aligned, mo_b_face, mo_prompt_b,
                     mo_mode, mo_crossover, mo_frames, mo_duration, mo_ping_pong, mo_size, last_face, mo_format],
                    [mo_gif, mo_gif_file, mo_mixed, mo_notes], api_name="morph",
                )

            with gr.Tab("Random", id="random", elem_id="tab-random"):
                with gr.Row():
                    # every count of faces fits below the seed's maximum
                    rnd_seed = control(RandomRequest, "seed", 0, maximum=LIMITS.seed.high - LIMITS.faces.high)
                    rnd_count = control(RandomRequest, "count", 4)
                    rnd_psi = control(RandomRequest, "psi")
                    rnd_size = control(RandomRequest, "size", 256)
                rnd_button, rnd_error = action_button("Random faces")
                rnd_gallery = gr.Gallery(label="Faces (seed, seed+1, …)", columns=4, elem_id="random-gallery")
                rnd_notes = notes_box("random-notes")
                on_click(
                    rnd_button, rnd_error, random_face, [rnd_seed, rnd_count, rnd_psi, rnd_size], [rnd_gallery, rnd_notes, last_face],
                    api_name="random_face",
                )

            with gr.Tab("Status", id="status", elem_id="tab-status"):
                gr.Markdown(status_markdown())

    demo.queue(max_size=None)  # every event goes straight to a thread; lane() bounds the requests that wait
    return demo


demo = build_demo()
# what every launch of the app uses (tests too): a thread for each request running or waiting, and spare ones to
# answer those refused; per-session state for the SESSIONS most recent sessions (API calls each open one)
LAUNCH = dict(max_file_size="30mb", css=CSS, theme=THEME, max_threads=len(LANES) + QUEUE_SIZE + 8, state_session_capacity=SESSIONS)

if __name__ == "__main__":
    demo.launch(**LAUNCH)
