"""Seeded normals: the stream the app, the CLI and the browser page share (celeblook.seeds <-> web/src/prng.js)."""

import json
import shutil
from pathlib import Path

import numpy as np
import procs
import pytest

from celeblook.seeds import seeded_normal

PRNG_JS = Path(__file__).resolve().parents[1] / "web" / "src" / "prng.js"
SEEDS = [0, 1, 7, 42, 123456, 2**31, 2**32 - 1]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the browser's stream cannot be run here")
def test_python_draws_the_browser_pages_stream():
    script = (f"import {{seededNormal}} from {json.dumps(PRNG_JS.as_uri())};"
              f"console.log(JSON.stringify({SEEDS}.map((s) => Array.from(seededNormal(s, 513)))));")
    done = procs.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for seed, js in zip(SEEDS, json.loads(done.stdout), strict=True):
        np.testing.assert_array_equal(seeded_normal(seed, 513), np.float32(js))  # odd length: the last sine unused


def test_seeds_are_normal_and_distinct():
    z = np.stack([seeded_normal(s, 512) for s in range(64)])
    assert z.dtype == np.float32 and abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert not np.array_equal(z[0], z[1]) and np.array_equal(z[3], seeded_normal(3, 512))
    with pytest.raises(ValueError, match="seed must be an integer"):
        seeded_normal(-1, 4)
    with pytest.raises(ValueError, match="seed must be an integer"):
        seeded_normal(2**32, 4)
