"""The models: each a small module that owns its math and its checkpoint format.

Build them through ``celeblook.factory`` (one ``create_*`` per model, ``load_models`` for a whole preset).
"""

from .mobilestylegan import Generator, GeneratorConfig

__all__ = ["Generator", "GeneratorConfig"]
