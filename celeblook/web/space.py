"""The static Space's README: its front matter (sdk static, cross-origin isolation headers) and how to publish it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from ..errors import InputError
from ..remedy import command
from .folders import BUILD_MARK

SPACE_HEADERS = {  # cross-origin isolation (wasm threads); Spaces accepts exactly these three keys
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "cross-origin",
}


def check_models_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--models-url must be an http(s) URL such as https://huggingface.co/OWNER/NAME/resolve/main/, got {url!r}")
    return url if url.endswith("/") else url + "/"


def space_readme(manifest: dict, models_url: str | None, models_dir: Path | None, out: Path) -> str:
    """README.md of a static Space: front matter (sdk static, app_file, cross-origin isolation) and how to publish."""
    headers = "\n".join(f"  {k}: {v}" for k, v in SPACE_HEADERS.items())
    preset = manifest["constants"].get("preset", "?")
    trained = manifest["constants"].get("trained", True)
    upload_models = ""
    if models_url:
        upload_models = (f"hf repos create OWNER/MODELS --repo-type model --exist-ok\n"
                         f"hf upload OWNER/MODELS {models_dir} . --repo-type model --exclude {BUILD_MARK}\n")
    return f"""---
title: CelebrityLook
emoji: 🙂
colorFrom: indigo
colorTo: pink
sdk: static
app_file: index.html
pinned: false
short_description: Edit faces with text, on your own device
custom_headers:
{headers}
---

# CelebrityLook, on your device

A static page: photo alignment, inversion, text to face, text edits with manual and learned strength, C-sweep
and morph GIFs all run in the visitor's browser (onnxruntime-web: WebGPU on a hardware GPU, wasm otherwise).
Nothing is uploaded. Models: preset `{preset}`{'' if trained else ' (untrained random weights: faces are patterns)'};
{f'fetched from {models_url}' if models_url else 'served from this Space'} and kept by the browser after the first visit.

## Publish (static Spaces are free)

```bash
pip install huggingface_hub && hf auth login
{upload_models}hf repos create OWNER/SPACE --repo-type space --space-sdk static --exist-ok
hf upload OWNER/SPACE {out} . --repo-type space --exclude {BUILD_MARK}
```
`custom_headers` above make the page cross-origin isolated (multi-threaded wasm); a model host must then send
CORS headers (Hugging Face `resolve/main` URLs do). Preview locally with the same headers:
`{command('web', 'serve', out)}`.

Licences: the page's runtime is onnxruntime-web (MIT), gifenc (MIT), face-api (MIT, with its detector,
landmark and face recognition models), TensorFlow.js wasm kernels (Apache-2.0); the tokenizer vocabulary is OpenAI CLIP's (MIT, as
packaged by open_clip).
The models inherit the licences of the weights they were made from (see the project's README).
"""
