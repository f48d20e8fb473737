"""What the pipeline's verbs take: one request per verb (``verbs``), each field declared once with its check, help and
label (``base``), and what an edit or a morph starts from (``starts``)."""

from .base import Request, check_field, limit_of, param, takes
from .starts import PhotoStart, PromptStart, Start, check_wplus, is_array, labelled
from .verbs import (
    REQUESTS,
    EditRequest,
    InvertRequest,
    MorphRequest,
    RandomRequest,
    SweepRequest,
    TextRequest,
    check_strength,
)

__all__ = ["REQUESTS", "EditRequest", "InvertRequest", "MorphRequest", "PhotoStart", "PromptStart", "RandomRequest", "Request",
           "Start", "SweepRequest", "TextRequest", "check_field", "check_strength", "check_wplus", "is_array", "labelled",
           "limit_of", "param", "takes"]
