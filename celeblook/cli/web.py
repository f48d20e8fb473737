"""``python -m celeblook web build|serve``: the in-browser version (onnxruntime-web) as a static site."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..remedy import command


def register(subparsers) -> None:
    parser = subparsers.add_parser("web", help="build and serve the in-browser version (static site)")
    sub = parser.add_subparsers(dest="web_command", required=True, parser_class=type(parser))

    build = sub.add_parser("build", help="page + onnxruntime-web + exported models into one directory")
    where = build.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path,
                       help="site directory: new, empty, or a previous build (replaced once the new one is complete)")
    where.add_argument("--space", type=Path, metavar="OUT",
                       help="like --out, plus README.md that makes the folder a static Hugging Face Space")
    build.add_argument("--models-url", metavar="URL",
                       help="fetch the ONNX files from this URL (e.g. https://huggingface.co/OWNER/NAME/resolve/main/); "
                            "they are written to OUT-models/ for upload instead of into the site")
    source = build.add_mutually_exclusive_group()
    source.add_argument("--exports", type=Path, help="an existing `export onnx` directory (default: export now)")
    source.add_argument("--preset", help="preset to export when no --exports is given (default: $CELEBLOOK_PRESET or ffhq)")
    build.set_defaults(func=run_build)

    serve = sub.add_parser("serve", help="serve a built site on 127.0.0.1 with COOP/COEP headers")
    serve.add_argument("site", type=Path)
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=run_serve)


def run_build(args: argparse.Namespace) -> int:
    from ..web.build import build_site

    site = build_site(args.space or args.out, exports=args.exports, preset=args.preset, space=args.space is not None,
                      models_url=args.models_url, progress=lambda m: print(m, flush=True))
    print(f"serve it with: {command('web', 'serve', site)}")
    if args.space is not None:
        print(f"publish it as a static Space: see {site / 'README.md'}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from ..web.serve import make_server

    server = make_server(args.site, args.port, verbose=True)
    print(f"serving {args.site} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
