"""CelebrityLook in the browser: assemble the static site (``build``) and serve it locally (``serve``).

The page itself lives in ``web/`` at the top of the checkout (HTML + ES modules, onnxruntime-web pinned by npm).
"""
