"""The pipeline: the one door through which the app, the CLI, the page's build and library users reach the models.

    from celeblook.pipeline import Pipeline, PhotoStart
    pipe = Pipeline.from_pretrained("tiny")   # or "ffhq", a heads folder, "hf-hub:OWNER/NAME"
    face = pipe.invert(PhotoStart("me.jpg")).faces[0]
    edit = pipe.edit(EditRequest(face, "a face with glasses", strengths=(0.4, "learned")))
    frames = pipe.sweep(edit, n_frames=12)   # the edit's direction, reused

``verbs``: the verbs (random_faces, invert, text_to_face, edit, sweep, morph); ``requests``: what each takes (one
request per verb, every field declared once with its check, help and label) and what edits and morphs start from;
``results``: what they return; ``base``: the components and rendering;
``slow``: the slow paths' policy; ``scoring``: CLIP scores and identity; ``load``: what a pretrained name stands for
and which install serves it.
"""

from ..limits import MORPH_MODES
from ..photo.aligned import AlignedPhoto, align_photo
from .load import Pretrained, load_models, pretrained
from .requests import (
    REQUESTS,
    EditRequest,
    InvertRequest,
    MorphRequest,
    PhotoStart,
    PromptStart,
    RandomRequest,
    Request,
    Start,
    SweepRequest,
    TextRequest,
)
from .results import Direction, EditResult, Face, Result, Variant
from .verbs import SCORE_SIZE, TEXT_VARIATION, Pipeline

__all__ = ["MORPH_MODES", "REQUESTS", "SCORE_SIZE", "TEXT_VARIATION", "AlignedPhoto", "Direction", "EditRequest", "EditResult",
           "Face", "InvertRequest", "MorphRequest", "PhotoStart", "Pipeline", "Pretrained", "PromptStart", "RandomRequest",
           "Request", "Result", "Start", "SweepRequest", "TextRequest", "Variant", "align_photo", "load_models", "pretrained"]
