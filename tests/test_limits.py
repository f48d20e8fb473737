"""The one source of limits: what every check accepts from an API client, and the app's UI-free helpers."""

from __future__ import annotations

import math
import re

import pytest

from celeblook import app_support as support
from celeblook.errors import InputError
from celeblook.limits import Choice, Limits, Range, check_flag
from celeblook.models import GeneratorConfig
from celeblook.presets import PRESETS


def test_ranges_take_numbers_and_numeric_text_and_say_what_is_wrong():
    seed = Range("seed", 0, 100, integer=True)
    assert seed.check("12") == 12 and seed.check(12.0) == 12 and seed.check(" 7 ") == 7
    psi = Range("psi", 0, 1.2)
    assert psi.check(0.5) == 0.5 and psi.check("1.2") == 1.2
    for bad, message in [("abc", "seed must be a number, got 'abc'"), (None, "seed is missing"), ("", "seed is missing"),
                         (True, "seed must be a number, got True"), ([1], "seed must be a number, got [1]"),
                         (math.nan, "seed must be from 0 to 100, got nan"), (1e9, "from 0 to 100"), (-1, "from 0 to 100"),
                         (2.5, "seed must be a whole number, got 2.5"), ("x" * 500, "got 'xxxxxxxxx")]:
        with pytest.raises(InputError, match=re.escape(message)) as caught:
            seed.check(bad)
        assert len(str(caught.value)) < 120  # never echoes a megabyte back


def test_bounds_are_said_as_the_page_says_them_whole_numbers_in_full():
    # the page's limits.js says 2147483647; Python's :g said 2.14748e+09, a number nobody can type back
    with pytest.raises(InputError, match=r"^seed must be from 0 to 2147483647, got -1$"):
        Limits.of(PRESETS["tiny"].generator).seed.check(-1)
    with pytest.raises(InputError, match=r"from 0 to 1.2, got 3$"):
        Range("psi", 0, 1.2).check(3)


def test_choices_compare_as_text_and_flags_read_what_clients_send():
    size = Choice("size", (256, 512, 1024))
    assert size.check("512") == 512 and size.check(1024) == 1024
    with pytest.raises(InputError, match="size must be one of 256, 512, 1024, got 300"):
        size.check(300)
    with pytest.raises(InputError, match="size is missing"):
        size.check(None)
    assert check_flag("f", True) is True and check_flag("f", 0) is False and check_flag("f", "false") is False
    with pytest.raises(InputError, match="f must be true or false, got 'maybe'"):
        check_flag("f", "maybe")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_limits_follow_the_generator(preset):
    limits = Limits.of(PRESETS[preset].generator)
    assert limits.sizes == (256, 512, 1024) and limits.n_slots == 23
    assert limits.crossover.check(22) == 22
    with pytest.raises(InputError, match="crossover slot must be from 1 to 22"):
        limits.crossover.check(23)
    small = Limits.of(GeneratorConfig(channels=(64, 64, 64, 64, 32, 32)))  # a generator that stops at 256 px
    assert small.sizes == (256,) and small.n_slots == 17


def test_sweep_frames_are_zero_or_a_gif():
    limits = Limits.of(GeneratorConfig())
    assert limits.sweep_frames(0) == 0 and limits.sweep_frames("12") == 12
    with pytest.raises(InputError, match="frames must be from 2 to 48"):
        limits.sweep_frames(1)


def test_uploads_only_what_the_upload_route_received(tmp_path):
    root = tmp_path / "uploads"
    (root / "abc").mkdir(parents=True)
    inside, result = root / "abc" / "me.png", root / "abc" / "result.png"
    inside.write_bytes(b"x")
    result.write_bytes(b"x")  # in the same folder, but not received through the upload
    received = {str(inside), str(root / "abc" / "deleted.png")}
    assert support.uploaded_file({"path": str(inside)}, received) == str(inside)
    assert support.uploaded_file(None, received) is None
    for payload in ({"path": str(tmp_path / "secret.png")}, {"path": str(root / ".." / "secret.png")}, {"path": str(root)},
                    {"path": str(result)}, {"path": str(root / "abc" / "deleted.png")}, {"path": str(root / "abc" / "x.png")},
                    {"path": str(root / "abc" / ".." / "abc" / "me.png")}, {"url": "http://x"}, {"path": 5}, 42, "", []):
        with pytest.raises(InputError, match=support.NOT_AN_UPLOAD):
            support.uploaded_file(payload, received)
