"""Presets as data (celeblook/data/presets/*.toml), one config per job with a flag per setting, and
``Pipeline.from_pretrained`` with each kind of name: a preset, a heads folder, an ONNX export, a heads repository."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil

import pytest
import torch
from hub_standin import hub_fixture  # noqa: F401  (the `hub` fixture)
from tiny_heads import TINY, save_tiny_heads

from celeblook.cli import build_parser, main
from celeblook.cli.train import all_config, changes
from celeblook.errors import InputError
from celeblook.models.mapper import load_mapper
from celeblook.pipeline import Pipeline, pretrained
from celeblook.presets import (
    JOBS,
    PRESET_DIR,
    PRESETS,
    EvalConfig,
    MapperTrainConfig,
    StrengthTrainConfig,
    get_preset,
    load_preset,
    preset_values,
)

REPO = "someone/celeblook-tiny-heads"
COMMANDS = {"mapper": ["train", "mapper"], "strength": ["train", "strength"], "encoder": ["train", "encoder"],
            "refiner": ["train", "refiner"],
            "eval": ["eval"]}


def subparser(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def another_value(field: dataclasses.Field) -> str:
    """A value the setting may take, given as text on a command line."""
    meta = field.metadata
    if meta["choices"]:
        return meta["choices"][-1]
    if field.name == "device":
        return "cpu"
    return "3" if "int" in str(field.type) else "0.5"


@pytest.mark.parametrize("job", list(JOBS))
def test_every_setting_is_a_flag_with_its_help_and_each_presets_value(job):
    config = JOBS[job]
    parser = subparser(*COMMANDS[job])
    options = flags(parser)
    for name, field in config.settings().items():
        shown = options[f"--{name.replace('_', '-')}"].help.replace("%%", "%")  # as argparse prints it
        assert field.metadata["help"] in shown, name
        for preset, value in preset_values(config, name).items():
            if value is not None:
                assert str(value) in shown, (name, preset)
    tail = ["--out", "unused"] if job != "eval" else []
    for preset in PRESETS:  # left out: the preset's value of every setting
        args = parser.parse_args(["--preset", preset, *tail])
        assert config.from_preset(preset, **changes(args, config)) == config.from_preset(preset)
    # given: each flag sets its own setting
    given = {name: another_value(field) for name, field in config.settings().items()}
    args = parser.parse_args(["--preset", "tiny", *tail, *(x for n, text in given.items() for x in (f"--{n.replace('_', '-')}", text))])
    made = config.from_preset("tiny", **changes(args, config))
    assert None not in (read := {name: getattr(args, name) for name in given}).values()
    assert {name: getattr(made, name) for name in given} == read


def test_train_all_has_each_jobs_settings_under_its_name_and_the_run_settings_once():
    options = flags(subparser("train", "all"))
    for job, config in JOBS.items():
        for name in config.settings():
            shared = name in ("seed", "device", "amp")
            assert (f"--{name}" if shared else f"--{job}-{name.replace('_', '-')}") in options, (job, name)
    args = build_parser().parse_args(["train", "all", "--preset", "tiny", "--out", "x", "--seed", "7", "--device", "cpu",
                                      "--mapper-steps", "5", "--strength-eval-pairs", "3", "--eval-n", "2"])
    config = all_config(args)
    assert (config.mapper.steps, config.strength.eval_pairs, config.evaluation.n) == (5, 3, 2)
    assert {config.mapper.seed, config.strength.seed, config.encoder.seed, config.evaluation.seed} == {7}
    assert {config.mapper.device, config.strength.device, config.encoder.device} == {"cpu"}
    assert config.encoder.steps == TINY.training["encoder"]["steps"]


@pytest.mark.parametrize("argv, says", [
    (["train", "mapper", "--mix-prob", "1.5"], "argument --mix-prob: must be a finite number in [0, 1], got '1.5'"),
    (["train", "encoder", "--batch", "1"], "argument --batch: must be a whole number at least 2, got '1'"),
    (["train", "strength", "--target", "1"], "argument --target: must be a finite number in (0, 1), got '1'"),
    (["train", "mapper", "--encoder", "clip"], "argument --encoder: must be one of: teacher, student, got 'clip'"),
    (["train", "all", "--eval-n", "1001"], "argument --eval-n: must be a whole number in [1, 1000], got '1001'"),
    (["eval", "--strength-pairs", "x"], "argument --strength-pairs: must be a whole number at least 2, got 'x'"),
])
def test_a_bad_flag_is_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*argv, "--out", "unused"] if argv[0] == "train" else argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_configs_check_their_settings_in_python_too():
    with pytest.raises(InputError, match=r"^strength setting c_max must be a finite number above 0, got -1.0$"):
        StrengthTrainConfig.from_preset("tiny", c_max=-1)
    with pytest.raises(InputError, match=r"MapperTrainConfig has no setting 'stesp' to change \(did you mean 'steps'\?\)"):
        MapperTrainConfig.from_preset("tiny", stesp=5)
    assert EvalConfig.from_preset("ffhq", psi=1).psi == 1.0 and type(EvalConfig.from_preset("ffhq", psi=1).psi) is float


def toml_value(value) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)  # TOML writes numbers and quoted text so


def test_a_preset_file_round_trip(tmp_path):
    """The shipped files load as the presets; every job setting a preset gives, written to a preset file and read
    back, makes the same configs (the file format holds every setting, each type kept)."""
    for name, preset in PRESETS.items():
        copy = tmp_path / "shipped" / f"{name}.toml"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(PRESET_DIR / f"{name}.toml", copy)
        assert dataclasses.replace(load_preset(copy), source=preset.source) == preset
    tiny = PRESETS["tiny"]
    lines = (PRESET_DIR / "tiny.toml").read_text().split("\n[mapper]")[0].splitlines()  # its models, as shipped
    for job, config in JOBS.items():
        made = config.from_preset(tiny)
        lines += [f"[{job}]", *(f"{key} = {toml_value(getattr(made, key))}" for key in config.settings()
                                if getattr(made, key) is not None)]
    written = tmp_path / "tiny.toml"
    written.write_text("\n".join(lines) + "\n")
    again = load_preset(written)
    assert again.generator == tiny.generator and again.student_kwargs == tiny.student_kwargs
    for config in JOBS.values():
        assert config.from_preset(again) == config.from_preset(tiny)


@pytest.mark.parametrize("change, says", [
    (("steps = 200", "stpes = 200"), r"\[mapper\]: unknown setting 'stpes' \(did you mean 'steps'\?\)"),
    (("trained = false", "trainde = false"), r"unknown key 'trainde' \(did you mean 'trained'\?\)"),
    (("channels = ", "chanels = "), r"\[generator\]: unknown key 'chanels' \(did you mean 'channels'\?\)"),
    (("c_max = 1.0", "c_max = 0"), r"\[strength\]: c_max must be a finite number above 0, got 0.0"),
    (("heldout = 256", 'heldout = "all"'), r"\[mapper\]: heldout must be a whole number at least 1, got 'all'"),
    (("trained = false", "trained = 0"), r"trained must be true or false, got 0"),
    (("n = 4\n", ""), r"\[eval\] lacks n: every preset sets them"),
    (("[mapper]", "[mapper"), r"tiny.toml: "),  # not TOML
])
def test_a_bad_preset_file_is_one_clear_error(tmp_path, change, says):
    text = (PRESET_DIR / "tiny.toml").read_text()
    assert change[0] in text
    path = tmp_path / "tiny.toml"
    path.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(InputError, match=says) as raised:
        load_preset(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


# ---------------------------------------------------------------------------------------------------
# from_pretrained


@pytest.fixture
def weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    return tmp_path / "weights"


def same_mapper(pipe: Pipeline, path) -> bool:
    saved, _ = load_mapper(path)
    return all(torch.equal(a, b) for a, b in zip(pipe.mapper.state_dict().values(), saved.state_dict().values()))


def test_from_pretrained_a_preset(weights, monkeypatch):
    pipe = Pipeline.from_pretrained("tiny")
    assert pipe.preset is get_preset("tiny") and "mapper: seeded random weights (untrained)" in pipe.notices
    monkeypatch.setenv("CELEBLOOK_PRESET", "tiny")  # the fallback, as before
    assert Pipeline.from_pretrained().preset is get_preset("tiny")


def test_from_pretrained_a_heads_folder(weights, tmp_path):
    folder = save_tiny_heads(tmp_path / "run")
    pipe = Pipeline.from_pretrained(folder)  # its sidecars name the preset
    assert pipe.preset.name == "tiny" and same_mapper(pipe, folder / "mapper.safetensors")
    assert any("distilled efficientformer_l1 student" in notice for notice in pipe.notices)  # the one beside the heads
    assert not pipe.missing() and pipe.random_faces(1, size=256).faces
    assert pretrained(str(folder), "tiny").heads == folder
    with pytest.raises(InputError, match=r"run is of preset 'tiny', not 'ffhq'"):
        pretrained(folder, "ffhq")


def test_from_pretrained_an_onnx_export(weights, tmp_path):
    from _export_tiny import tiny_graphs

    from celeblook.export.onnx import export_models
    from celeblook.runtime.ort import OrtEngine

    export = tmp_path / "export"
    export_models([g for g in tiny_graphs() if g.name in ("mapping", "text_encoder", "image_encoder", "mapper")], export,
                  constants={"preset": "tiny"})
    pipe = Pipeline.from_pretrained(str(export))
    assert isinstance(pipe.engine, OrtEngine) and pipe.engine.directory == export and pipe.preset.name == "tiny"
    assert not pipe.models.gradients and any(f"ONNX export in {export}" in notice for notice in pipe.notices)
    assert pipe.has_mapper and not pipe.engine.has("strength")
    assert [(m.part, m.path) for m in pipe.missing()] == [("strength", str(export / "strength.onnx"))]


def test_from_pretrained_a_heads_repository(hub, weights, tmp_path):
    folder = save_tiny_heads(tmp_path / "run")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "manifest.json").write_text(json.dumps({"format": "celeblook-onnx/1"}))
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(folder)]) == 0
    pipe = Pipeline.from_pretrained(f"hf-hub:{REPO}")  # the index names the preset
    assert pipe.preset.name == "tiny" and same_mapper(pipe, weights / "tiny" / "mapper.safetensors")
    assert (weights / "tiny" / "mapper.safetensors").read_bytes() == (folder / "mapper.safetensors").read_bytes()
    gets = len([r for r in hub.requests if r[0] == "GET"])
    assert Pipeline.from_pretrained(f"hf-hub:{REPO}").preset.name == "tiny"  # installed: the record names the preset
    assert len([r for r in hub.requests if r[0] == "GET"]) == gets


@pytest.mark.parametrize("name, says", [
    ("huge", r"^unknown preset 'huge': a pretrained name is a preset \(ffhq, tiny\), a folder of heads or of an ONNX "
             r"export, or hf-hub:OWNER/NAME$"),
    ("./no/such/folder", r"^no heads folder no/such/folder: a pretrained name is "),
    ("hf-hub:not a repo", r"^a Hub repository is OWNER/NAME, got 'not a repo'$"),
])
def test_a_bad_pretrained_name_is_one_line(name, says, weights):
    with pytest.raises(InputError, match=says):
        Pipeline.from_pretrained(name)


def test_a_folder_that_names_no_preset_is_refused(weights, tmp_path):
    with pytest.raises(InputError, match="holds no heads that name their preset"):
        Pipeline.from_pretrained(tmp_path)
    assert pretrained(tmp_path, "tiny").preset.name == "tiny"  # the caller's preset, where its files name none


def test_the_cli_takes_pretrained_names(weights, tmp_path, capsys):
    folder = save_tiny_heads(tmp_path / "run")
    assert main(["text", "a smiling face", "--preset", str(folder), "--size", "256", "--out", str(tmp_path / "out")]) == 0
    assert "distilled efficientformer_l1 student" in capsys.readouterr().err
    assert main(["text", "a smiling face", "--preset", "huge", "--size", "256", "--out", str(tmp_path / "out2")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err


def test_eval_defaults_are_the_presets_of_its_heads(tmp_path):
    args = build_parser().parse_args(["eval", "--heads", str(save_tiny_heads(tmp_path / "run"))])
    found = pretrained(args.heads, args.preset)
    assert EvalConfig.from_preset(found.preset, **changes(args, EvalConfig)) == EvalConfig.from_preset("tiny")
