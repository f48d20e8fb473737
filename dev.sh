#!/usr/bin/env bash
# One entry point that sets everything up on a fresh machine, then runs what you ask for:
#   bash dev.sh app     run the Gradio app (CELEBLOOK_PRESET=tiny for no weights)
#   bash dev.sh test    run the test suite
#   bash dev.sh <cmd>   run any command inside the project's environment, from the folder you are in
#                       (e.g. bash dev.sh celeblook invert me.jpg --out out/me)
# It installs this checkout editable with its development extras (pip install -e ".[dev]", the versions pinned by
# requirements.txt as constraints) into .venv. CELEBLOOK_RUNTIME=1 makes the runtime install instead
# (".[runtime]": ONNX Runtime, no torch, pinned by requirements-runtime.txt; --no-compile) in .venv-runtime, which
# serves an ONNX export: CELEBLOOK_RUNTIME=1 CELEBLOOK_ONNX_DIR=DIR bash dev.sh app. CELEBLOOK_VENV=DIR picks another
# venv.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)

if [ "${CELEBLOOK_RUNTIME:-}" = 1 ]; then
  EXTRA=runtime
  PINS=$ROOT/requirements-runtime.txt
  # no bytecode for every module of every dependency at install (106 MiB, pandas' tests among them): Python writes
  # it at first import, for what the app uses (its size bar counts the whole site-packages: docs/install.md)
  FLAGS=--no-compile
  VENV=${CELEBLOOK_VENV:-$ROOT/.venv-runtime}
else
  EXTRA=dev
  PINS=$ROOT/requirements.txt
  FLAGS=
  VENV=${CELEBLOOK_VENV:-$ROOT/.venv}
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # busy-waiting OpenMP threads wreck latency on small shared CPUs
export GRADIO_ANALYTICS_ENABLED=False
export HF_HUB_DISABLE_TELEMETRY=1

stamp="$VENV/.install.sha256"
# the pins, the package's dependencies and the install's flags (none for dev: its stamp is what it was)
want=$( { cat "$PINS" "$ROOT/pyproject.toml"; printf %s "$FLAGS"; } | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[dev.sh] installing celeblook[$EXTRA] into $VENV (first run takes a few minutes)"
  # the runtime venv starts empty each time, so it holds only what its pins name (its size is held to a bar:
  # docs/install.md); the dev venv is updated in place (torch is gigabytes)
  python3 -m venv $([ "$EXTRA" = runtime ] && echo --clear) "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $FLAGS -c "$PINS" -e "$ROOT[$EXTRA]"
  echo "$want" > "$stamp"
fi

need_browser() {
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[dev.sh] installing Debian chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[dev.sh] chromium not found: browser tests will be skipped (install Debian's 'chromium' package)"
  fi
}

need_web() {  # the in-browser page's runtime (onnxruntime-web, gifenc) comes from npm, pinned by web/package-lock.json
  [ -f "$ROOT/web/package.json" ] || return 0
  if ! command -v npm >/dev/null 2>&1; then echo "[dev.sh] npm not found: web tests will be skipped"; return 0; fi
  if [ ! -f "$ROOT/web/node_modules/.package-lock.json" ] || [ "$ROOT/web/package-lock.json" -nt "$ROOT/web/node_modules/.package-lock.json" ]; then
    echo "[dev.sh] npm ci in web/"
    (cd "$ROOT/web" && npm ci --no-audit --no-fund --silent)
  fi
}

case "${1:-}" in
  app) shift; cd "$ROOT"; exec "$VENV/bin/python" app.py "$@" ;;
  test) shift; cd "$ROOT"; need_browser; need_web; exec "$VENV/bin/python" -m pytest "$@" ;;
  "") echo "usage: bash dev.sh app|test|<command>"; exit 2 ;;
  # stay in the caller's folder (relative paths in the command keep working); PYTHONPATH puts this checkout first,
  # as a venv shared through CELEBLOOK_VENV may hold another checkout's editable install
  *) export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"; exec "$VENV/bin/$1" "${@:2}" ;;
esac
