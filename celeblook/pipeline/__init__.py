"""The pipeline: the one door through which the app, the CLI, the page's build and library users reach the models.

    from celeblook.pipeline import Pipeline, PhotoStart
    pipe = Pipeline.from_preset("tiny")
    face = pipe.invert(PhotoStart("me.jpg")).faces[0]

``verbs``: the requests (random_faces, invert, text_to_face, edit, sweep, morph); ``requests``: what they start from
and the checks beyond plain limits; ``results``: what they return; ``base``: the components and rendering;
``slow``: the slow paths' policy; ``scoring``: CLIP scores and identity; ``load``: which install serves them.
"""

from ..photo.aligned import AlignedPhoto, align_photo
from .load import load_models
from .requests import PhotoStart, PromptStart, Start
from .results import Direction, EditResult, Face, Result, Variant
from .verbs import MORPH_MODES, SCORE_SIZE, TEXT_VARIATION, Pipeline

__all__ = ["MORPH_MODES", "SCORE_SIZE", "TEXT_VARIATION", "AlignedPhoto", "Direction", "EditResult", "Face", "PhotoStart",
           "Pipeline", "PromptStart", "Result", "Start", "Variant", "align_photo", "load_models"]
