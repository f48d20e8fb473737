"""The CLI's progress bar counts what the pipeline reports: `invert --refine-steps 50` showed "2/100" next to
"step 1/50" (issue 21)."""

from __future__ import annotations

import re

from synthetic_face import wild_photo

from celeblook.cli.edit import _progress
from celeblook.pipeline import PhotoStart, Pipeline


def test_the_refine_bar_shows_the_steps_done(capsys, tmp_path):
    photo = tmp_path / "face.png"
    wild_photo(0.0)[0].save(photo)
    Pipeline.from_pretrained("tiny").invert(PhotoStart(photo, aligned=True), 4, 256, progress=_progress("refine"))
    # every redraw of the bar: its percentage and the step the message names
    err = capsys.readouterr().err
    shown = re.findall(r"refine:\s+(\d+)%\|[^|]*\| refining the inversion: step (\d+)/(\d+)", err)
    assert shown, f"no refinement step was shown: {err!r}"
    assert all(int(percent) == round(100 * int(step) / int(steps)) for percent, step, steps in shown), shown
    assert ("100", "4", "4") in shown
    assert "/100" not in err
