"""The verbs' requests: one check per request naming the bad field (library, pipeline, CLI), and the CLI's flags and
site.json's schema made from the same fields."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, replace

import numpy as np
import pytest

from celeblook.cli import build_parser, main
from celeblook.cli.requests import LIMITS, flag_of, flagged
from celeblook.errors import InputError
from celeblook.limits import Choice, Range, bound
from celeblook.pipeline import (
    REQUESTS,
    EditRequest,
    InvertRequest,
    MorphRequest,
    PhotoStart,
    Pipeline,
    RandomRequest,
    SweepRequest,
    TextRequest,
    load_models,
)
from celeblook.pipeline.requests import limit_of
from celeblook.web.build import app_limits

W = np.zeros((1, 23, 512), np.float32)
PHOTO = PhotoStart(None)
# (request, its arguments but the bad field, the bad field, a bad value)
BAD = [
    (RandomRequest, {"seed": 0}, "seed", "seven"),
    (RandomRequest, {"seed": 0}, "count", 9),
    (RandomRequest, {"seed": 0}, "psi", float("nan")),
    (RandomRequest, {"seed": 0}, "size", 300),
    (InvertRequest, {"photo": PHOTO}, "refine_steps", 501),
    (InvertRequest, {"photo": PHOTO}, "size", "huge"),
    (InvertRequest, {"photo": PHOTO}, "refine_iterations", 9),
    (TextRequest, {"prompt": "a face"}, "prompt", "   "),
    (TextRequest, {"prompt": "a face"}, "seed", -1),
    (TextRequest, {"prompt": "a face"}, "psi", 9),
    (TextRequest, {"prompt": "a face"}, "size", 100),
    (TextRequest, {"prompt": "a face"}, "optimize_steps", -1),
    (EditRequest, {"start": W, "target": "glasses"}, "target", 5),
    (EditRequest, {"start": W, "target": "glasses"}, "source", 5),
    (EditRequest, {"start": W, "target": "glasses"}, "strengths", ["strong"]),
    (EditRequest, {"start": W, "target": "glasses"}, "strengths", []),
    (EditRequest, {"start": W, "target": "glasses"}, "size", 300),
    (EditRequest, {"start": W, "target": "glasses"}, "optimize_steps", 1e9),
    (SweepRequest, {"start": W, "target": "glasses"}, "target", None),
    (SweepRequest, {"start": W, "target": "glasses"}, "source", 5),
    (SweepRequest, {"start": W, "target": "glasses"}, "c_max", 0),
    (SweepRequest, {"start": W, "target": "glasses"}, "n_frames", 1),
    (SweepRequest, {"start": W, "target": "glasses"}, "size", 300),
    (MorphRequest, {"a": W, "b": W, "mode": "style_mix"}, "n_frames", 49),
    (MorphRequest, {"a": W, "b": W, "mode": "style_mix"}, "size", 300),
    (MorphRequest, {"a": W, "b": W}, "mode", "blend"),
    (MorphRequest, {"a": W, "b": W, "mode": "style mix"}, "crossover", 23),
]


def names_field(message: str, field: str) -> bool:
    return field in message or field.replace("_", " ") in message.lower()


@pytest.mark.parametrize("request_type, given, field, value", BAD, ids=[f"{r.verb}-{f}-{v!r}" for r, _, f, v in BAD])
def test_a_bad_field_is_one_line_naming_it(request_type, given, field, value):
    with pytest.raises(InputError) as caught:
        request_type.checked(LIMITS, **{**given, field: value})
    message = str(caught.value)
    assert caught.value.field == field and names_field(message, field) and "\n" not in message, message


def test_every_checked_field_of_every_request_has_a_bad_value_above():
    """Each field with a check is covered by BAD: a new field needs a case there."""
    checked = {(r.verb, name) for r in REQUESTS.values() for name, f in r.params().items()
               if f.metadata["limit"] or f.metadata["check"]} - {("invert", "photo")}  # any photo passes: align checks it
    assert checked == {(r.verb, f) for r, _, f, _ in BAD}


def test_a_request_is_checked_once_and_keeps_its_notices():
    request = TextRequest.checked(LIMITS, "a face " * 200, "3", size="512")
    assert (request.seed, request.size) == (3, 512) and "was cut" in request.notices[0]
    assert request.check(LIMITS) is request  # checked against these limits already
    with pytest.raises(InputError, match="seed must be from 0"):  # a changed copy is checked again
        replace(request, seed=-1).check(LIMITS)
    assert MorphRequest.checked(LIMITS, W, W, crossover=99).crossover == 0  # interpolate: no crossover, not checked
    assert MorphRequest.checked(LIMITS, W, W, mode="style mix").mode == "style_mix"
    assert EditRequest.checked(LIMITS, W, "glasses", strengths=0.5).strengths == (0.5,)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return Pipeline(load_models("tiny", tmp_path_factory.mktemp("no_heads")))


@pytest.mark.parametrize("call, field", [
    (lambda p: p.random_faces(1, count=9), "count"),
    (lambda p: p.random_faces(RandomRequest(1, psi="high")), "psi"),
    (lambda p: p.invert(PHOTO, refine_steps=501), "refine_steps"),
    (lambda p: p.text_to_face(TextRequest("a face", optimize_steps=-1)), "optimize_steps"),
    (lambda p: p.edit(W, "glasses", strengths=["strong"]), "strengths"),
    (lambda p: p.sweep(W, "glasses", c_max=5), "c_max"),
    (lambda p: p.morph(W, W, "two"), "n_frames"),
    (lambda p: p.morph(MorphRequest(W, W, mode="style_mix", crossover=0)), "crossover"),
])
def test_every_verb_refuses_a_bad_field_by_name(pipe, call, field):
    with pytest.raises(InputError) as caught:
        call(pipe)
    assert caught.value.field == field and names_field(str(caught.value), field)


def test_the_last_seeds_are_said_as_whole_numbers(pipe):
    """2**31 - 1 is the last seed: two faces from it would pass it, and the message says where to start instead."""
    with pytest.raises(InputError, match="seed must be at most 2147483646 for 2 faces"):
        pipe.random_faces(2**31 - 1, count=2)


def test_a_request_and_its_fields_as_arguments_are_one_call(pipe):
    by_fields = pipe.text_to_face("a face", 3, 0.5, 256)
    by_request = pipe.text_to_face(TextRequest(prompt="a face", seed=3, psi=0.5, size=256))
    changed = pipe.text_to_face(TextRequest("a face", 3, 0.5), size="256")  # a request with a change, checked
    assert np.array_equal(by_fields.faces[0].wplus, by_request.faces[0].wplus)
    assert np.array_equal(by_fields.faces[0].wplus, changed.faces[0].wplus) and changed.faces[0].image.size == (256, 256)


def test_a_sweep_of_an_edit_encodes_no_prompt_again(pipe, monkeypatch):
    edit = pipe.edit(W, "a face with glasses", strengths=[0.5], size=256)
    calls = []
    monkeypatch.setattr(pipe.engine, "embed_tokens", lambda tokens: calls.append(tokens))
    frames = pipe.sweep(SweepRequest(edit, n_frames=2, size=256))
    assert len(frames.faces) == 2 and calls == []


def subcommand(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("command, request_type, skip", [
    ("invert", InvertRequest, ("photo",)), ("text", TextRequest, ("prompt",)), ("edit", EditRequest, ()),
    ("edit", SweepRequest, ("start", "target", "source", "c_max", "size")), ("morph", MorphRequest, ())])
def test_the_cli_flags_are_the_request_fields(command, request_type, skip):
    actions = {a.dest: a for a in subcommand(command)._actions}
    fields = flagged(request_type, skip)
    assert fields
    for name, f in fields.items():
        action, limit = actions[name], limit_of(f, LIMITS)
        assert action.option_strings == [flag_of(f)] and action.help.startswith(f.metadata["help"])
        assert action.required == (f.default is MISSING) and action.default == (None if f.default is MISSING else f.default)
        assert action.choices == (limit.options if isinstance(limit, Choice) else None)
        if isinstance(limit, Range):
            assert f"{bound(limit.low)}..{bound(limit.high)}" in action.help


@pytest.mark.parametrize("args, field", [
    (["invert", "face.png", "--refine-steps", "501"], "refine_steps"),
    (["text", "a face", "--psi", "9"], "psi"),
    (["text", "", "--seed", "3"], "prompt"),
    (["edit", "--latent", "w.npy", "--target", "glasses", "--strength", "strong"], "strengths"),
    (["edit", "--latent", "w.npy", "--target", " "], "target"),
    (["edit", "--latent", "w.npy", "--target", "glasses", "--gif", "--frames", "1"], "n_frames"),
    (["morph", "w.npy", "w.npy", "--mode", "style_mix", "--crossover", "99"], "crossover"),
])
def test_the_cli_says_a_bad_field_in_one_line_and_exits_2(tmp_path, monkeypatch, capsys, args, field):
    monkeypatch.chdir(tmp_path)
    np.save("w.npy", W[0])
    assert main([*args, "--preset", "tiny", "--out", "out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and names_field(err[0], field), err
    assert not (tmp_path / "out").exists()  # refused before any model loaded or folder was made


def test_site_json_carries_the_request_schema():
    limits = app_limits()
    for verb, request in REQUESTS.items():
        schema = limits["requests"][verb]
        assert list(schema) == list(request.params())
        for name, f in request.params().items():
            entry, limit = schema[name], limit_of(f, LIMITS)
            assert (entry["label"], entry["help"]) == (f.metadata["label"], f.metadata["help"])
            if f.default is not MISSING and f.default is not None:
                expected = list(f.default) if isinstance(f.default, tuple) else f.default
                assert entry["default"] == expected == limits["defaults"][verb][name]
            if isinstance(limit, Range):
                assert {k: entry[k] for k in ("low", "high", "integer")} == {
                    k: v for k, v in limits["ranges"][entry["limit"]].items() if k != "name"}
            if isinstance(limit, Choice):
                assert entry["options"] == list(limit.options)
