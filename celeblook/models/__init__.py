"""The models: each a small module that owns its math and its checkpoint format.

Build them through ``celeblook.factory`` (one ``create_*`` per model, ``load_models`` for a whole preset).
Importing this package loads no torch: the generator's config is read by presets and the torch-free runtime.
"""

from .generator_config import GeneratorConfig

__all__ = ["GeneratorConfig"]
