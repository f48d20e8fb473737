"""Training of the heads (mapper, strength predictor) and the student encoder: ``python -m celeblook train ...``."""
