"""The pipeline: the one door through which the app, the CLI, the page's build and library users reach the models.

    from celeblook.pipeline import Pipeline, PhotoStart
    pipe = Pipeline.from_pretrained("tiny")   # or "ffhq", a heads folder, "hf-hub:OWNER/NAME"
    face = pipe.invert(PhotoStart("me.jpg")).faces[0]

``verbs``: the requests (random_faces, invert, text_to_face, edit, sweep, morph); ``requests``: what they start from
and the checks beyond plain limits; ``results``: what they return; ``base``: the components and rendering;
``slow``: the slow paths' policy; ``scoring``: CLIP scores and identity; ``load``: what a pretrained name stands for
and which install serves it.
"""

from ..photo.aligned import AlignedPhoto, align_photo
from .load import Pretrained, load_models, pretrained
from .requests import PhotoStart, PromptStart, Start
from .results import Direction, EditResult, Face, Result, Variant
from .verbs import MORPH_MODES, SCORE_SIZE, TEXT_VARIATION, Pipeline

__all__ = ["MORPH_MODES", "SCORE_SIZE", "TEXT_VARIATION", "AlignedPhoto", "Direction", "EditResult", "Face", "PhotoStart",
           "Pipeline", "Pretrained", "PromptStart", "Result", "Start", "Variant", "align_photo", "load_models", "pretrained"]
