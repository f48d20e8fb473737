"""train all on the tiny preset: every stage in order (the strength head through the student trained before it), an
interruption in the middle, the resume, the skip, the stages run again after a head they are made from changed
(an OUT of the earlier order included); the eval stage's evaluation of the heads in OUT; the preset's training
defaults and the figures a run prints."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest
from strength_heads import save_still_strength_head
from tiny_heads import STUDENT, save_tiny_heads

import celeblook.training.all as all_module
import celeblook.training.strength as strength_module
from celeblook.cli import build_parser, main
from celeblook.cli.train import all_config, job_config
from celeblook.evaluate import evaluate
from celeblook.presets import (
    EncoderTrainConfig,
    EvalConfig,
    MapperTrainConfig,
    RefinerTrainConfig,
    StrengthTrainConfig,
    get_preset,
)
from celeblook.training.all import RECORD, AllConfig, evaluation, figure_lines, train_all
from celeblook.training.mapper import lr_at
from celeblook.training.strength import CHECKPOINT_NAME

TINY = get_preset("tiny")
STEPS = dict(mapper=20, strength=6, encoder=6, refiner=2)  # the defaults' figures are measured in the README, not here


def steps_logged(path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if '"loss"' in line]


def test_train_all_resumes_an_interrupted_stage_and_skips_finished_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    out = tmp_path / "run"
    run = dict(seed=0, amp="off", device="cpu")
    config = AllConfig(
        mapper=MapperTrainConfig.from_preset(TINY, steps=STEPS["mapper"], centre_samples=64, heldout=64, **run),
        strength=StrengthTrainConfig.from_preset(TINY, steps=STEPS["strength"], checkpoint_every=2, eval_pairs=4, **run),
        encoder=EncoderTrainConfig.from_preset(TINY, steps=STEPS["encoder"], n_eval=8, **run),
        refiner=RefinerTrainConfig.from_preset(TINY, steps=STEPS["refiner"], batch=2, calibration_faces=8, eval_n=2,
                                               optimise_steps=1, **run),
        evaluation=EvalConfig.from_preset(TINY, n=2, refine_steps=2, edit_prompts=1, strength_pairs=2),
    )

    saved = []
    real_save = strength_module.save_checkpoint

    def killed_after_the_first_checkpoint(path, state):
        real_save(path, state)
        saved.append(state["step"])
        if len(saved) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(strength_module, "save_checkpoint", killed_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train_all(TINY, out, config, show_progress=False)
    record = json.loads((out / RECORD).read_text())
    assert list(record["stages"]) == ["mapper", "encoder"] and saved == [2]  # the student first: strength reads it
    assert not (out / "strength.safetensors").exists()
    mapper_file, student_file = (out / "mapper.safetensors").stat(), (out / f"{STUDENT}.safetensors").stat()

    lines = []
    summary = train_all(TINY, out, config, log=lines.append, show_progress=False)  # the resume
    assert lines[:2] == ["[train all 1/6] mapper: done in an earlier run, skipped",
                         "[train all 2/6] encoder: done in an earlier run, skipped"]
    assert (out / "mapper.safetensors").stat().st_mtime_ns == mapper_file.st_mtime_ns  # not trained again
    assert (out / f"{STUDENT}.safetensors").stat().st_mtime_ns == student_file.st_mtime_ns
    assert steps_logged(out / "runs" / "mapper" / "metrics.jsonl") == list(range(1, 21))
    assert steps_logged(out / "runs" / "strength" / "metrics.jsonl") == list(range(1, 7))  # 1-2, then 3-6
    assert saved == [2, 4, 6]
    assert list(json.loads((out / RECORD).read_text())["stages"]) == ["mapper", "encoder", "strength", "refiner", "eval",
                                                                     "export"]
    for name in ("mapper", "strength", STUDENT, "refiner"):
        assert (out / f"{name}.safetensors").is_file() and (out / f"{name}.json").is_file()
    # the strength head learned through OUT's student: the E_I the pipeline serves with these heads
    for head in ("strength", "refiner"):
        provenance = json.loads((out / f"{head}.json").read_text())["provenance"]
        assert provenance["image_encoder"] == "student" and provenance["student"] == str(out / f"{STUDENT}.safetensors")
    manifest = json.loads((out / "onnx" / "manifest.json").read_text())
    # the whole runtime export: a torch-free app serves it (and `weights publish` uploads it); the refiner with the
    # exit it renders at (tiny's 64)
    assert sorted(entry["file"] for entry in manifest["files"]) == [
        "image_encoder.onnx", "mapper.onnx", "mapping.onnx", "refiner.onnx", "strength.onnx", "synthesis_1024.onnx",
        "synthesis_256.onnx", "synthesis_512.onnx", "synthesis_64.onnx", "text_encoder.onnx", "text_encoder_int8.onnx"]
    assert manifest["constants"]["photo_encoder"] == "image_encoder"  # OUT's student, as the pipeline of OUT uses it
    assert manifest["source"]["heads"] == str(out.resolve())
    # (the mapper's parity is left out: export feeds it random-normal "embeddings" of norm ~28, where a trained
    # mapper's outputs reach ~1000 and float32 rounding alone exceeds the absolute tolerance)
    assert all(entry["parity"]["ok"] for entry in manifest["files"] if entry["file"] != "mapper.onnx")
    eval_json = json.loads((out / "eval.json").read_text())
    assert eval_json == summary and {"mapper", "strength", "encoder", "refiner"} <= set(summary)
    assert summary["refiner"]["iterations"] == 2 and summary["refiner"]["n"] == 2  # 2 steps: plumbing, no bar
    assert summary["mapper"]["wplus_mse_final"] < summary["mapper"]["wplus_mse_initial"]  # 20 steps: learning, no bar
    assert summary["strength"]["target"] == 0.98 and summary["strength"]["n_pairs"] == 4
    assert any(line.startswith("mapper: held-out W+ MSE") for line in lines)
    assert any(line.startswith("strength: held-out |similarity - 0.98| on the") for line in lines)

    # the eval stage: python -m celeblook eval of the heads in OUT (the student there as E_I), printed as a table
    measured = summary["evaluation"]
    assert measured["heads"] == str(out) and measured["config"] == dataclasses.asdict(config.evaluation)
    assert f"image encoder: distilled {TINY.student} student ({out / f'{STUDENT}.safetensors'})" in measured["notices"]
    assert not any("seeded" in notice for notice in measured["notices"])  # OUT's heads, not the stand-ins
    again = evaluate(TINY, config.evaluation, heads=out)
    for section in ("inversion", "edit", "refiner", "strength"):
        untimed = {key: value for key, value in measured[section].items() if not key.startswith("seconds")}
        assert untimed == pytest.approx({key: again[section][key] for key in untimed}, rel=1e-5, nan_ok=True), section
    assert measured["strength"]["target"] == 0.98  # what the tiny head is trained for
    assert f"preset: {TINY.label} ({measured['label']}), heads in {out}" in lines
    assert any(line.startswith("inversion  similarity_refined") for line in lines)

    assert main(["train", "all", "--preset", "tiny", "--out", str(out), "--device", "cpu"]) == 0  # all done
    assert capsys.readouterr().out.count("done in an earlier run, skipped") == 6

    # a head replaced after the evaluation: eval and export run again (the rest stays done), and the numbers follow
    # the head (the export's run is stood in for: the first one above is the real thing)
    save_still_strength_head(out / "strength.safetensors")
    exported = []
    monkeypatch.setattr(all_module, "_export", lambda preset, folder, *rest: exported.append(folder) or {})
    lines = []
    summary = train_all(TINY, out, config, log=lines.append, show_progress=False)
    again = " again: a head it is made from changed since"
    assert [f"[train all 5/6] eval{again}", f"[train all 6/6] export{again}"] == [
        line for line in lines if line.startswith("[train all") and "skipped" not in line and " done in " not in line]
    assert sum("skipped" in line for line in lines) == 4 and exported == [out]
    assert measured["edit"]["strength_mean"] > 1e-3 and summary["evaluation"]["edit"]["strength_mean"] < 1e-6


def test_a_run_of_the_earlier_order_trains_its_strength_head_again_through_its_student(tmp_path, monkeypatch):
    """An OUT that `train all` left when strength came before the encoder: every stage recorded done, but the strength
    head (and its checkpoint) older than the student. Strength starts again from scratch, through the student; eval
    and export follow; mapper and encoder stay."""
    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    out = save_tiny_heads(tmp_path / "run")
    run = out / "runs" / "strength"
    run.mkdir(parents=True)
    (run / CHECKPOINT_NAME).write_bytes(b"a checkpoint of the head trained through the teacher")  # never read
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    (out / "eval.json").write_text("{}")
    (out / "onnx").mkdir()
    (out / "onnx" / "manifest.json").write_text("{}")
    when = time.time() - 100  # written in the earlier order, a second apart
    for i, path in enumerate([out / "mapper.safetensors", run / CHECKPOINT_NAME, run / "metrics.jsonl",
                              out / "strength.safetensors", out / f"{STUDENT}.safetensors", out / "eval.json",
                              out / "onnx" / "manifest.json"]):
        os.utime(path, (when + i, when + i))
    old_order = ["mapper", "strength", "encoder", "eval", "export"]
    (out / RECORD).write_text(json.dumps({"preset": "tiny", "stages": {s: {"done": True, "figures": {}} for s in old_order}}))
    ran = []
    monkeypatch.setattr(all_module, "_refiner", lambda preset, folder, *rest: ran.append("refiner") or {})
    monkeypatch.setattr(all_module, "_eval", lambda preset, folder, *rest: ran.append("eval") or {})
    monkeypatch.setattr(all_module, "_export", lambda preset, folder, *rest: ran.append("export") or {})
    run_config = dict(seed=0, amp="off", device="cpu")
    config = AllConfig(mapper=MapperTrainConfig.from_preset(TINY, **run_config),
                       encoder=EncoderTrainConfig.from_preset(TINY, **run_config),
                       strength=StrengthTrainConfig.from_preset(TINY, steps=2, batch=2, eval_pairs=2, **run_config),
                       refiner=RefinerTrainConfig.from_preset(TINY, **run_config),
                       evaluation=EvalConfig.from_preset(TINY, n=1, refine_steps=1, edit_prompts=1, strength_pairs=2))
    lines = []
    train_all(TINY, out, config, log=lines.append, show_progress=False)
    assert lines[:2] == ["[train all 1/6] mapper: done in an earlier run, skipped",
                         "[train all 2/6] encoder: done in an earlier run, skipped"]
    assert "[train all 3/6] strength again: a head it is made from changed since: 2 steps" in lines
    assert any("was trained on an older mapper or student: the strength head starts again" in line for line in lines)
    assert steps_logged(run / "metrics.jsonl") == [1, 2] and ran == ["refiner", "eval", "export"]
    provenance = json.loads((out / "strength.json").read_text())["provenance"]
    assert provenance["image_encoder"] == "student" and provenance["student"] == str(out / f"{STUDENT}.safetensors")
    record = json.loads((out / RECORD).read_text())["stages"]
    assert record["strength"]["figures"]["n_pairs"] == 2 and all(record[s]["done"] for s in old_order)


def test_a_run_folder_belongs_to_one_preset(tmp_path, capsys):
    (tmp_path / RECORD).write_text(json.dumps({"preset": "ffhq", "stages": {}}))
    assert main(["train", "all", "--preset", "tiny", "--out", str(tmp_path)]) == 2
    assert "holds a `train all` run of preset 'ffhq'" in capsys.readouterr().err


def parsed(*argv: str):
    return build_parser().parse_args(["train", *argv, "--out", "unused"])


def test_bare_commands_take_the_presets_defaults():
    tiny = TINY.training
    mapper = job_config(parsed("mapper", "--preset", "tiny"), MapperTrainConfig)
    assert (mapper.steps, mapper.batch, mapper.image_size, mapper.mix_prob, mapper.warmup) == (
        tiny["mapper"]["steps"], tiny["mapper"]["batch"], tiny["mapper"]["image_size"], tiny["mapper"]["mix_prob"],
        tiny["mapper"]["warmup"])
    strength = job_config(parsed("strength", "--preset", "tiny"), StrengthTrainConfig)
    assert (strength.steps, strength.target, strength.c_max, strength.size) == (60, 0.98, 1.0, 64)
    assert job_config(parsed("encoder", "--preset", "tiny"), EncoderTrainConfig).steps == tiny["encoder"]["steps"]
    assert dataclasses.asdict(all_config(parsed("all", "--preset", "tiny", "--seed", "3")).evaluation) == {
        **tiny["eval"], "size": 256, "psi": 0.7, "seed": 3}
    # fewer steps than the warm-up: the schedule still reaches the full rate
    short = job_config(parsed("mapper", "--preset", "tiny", "--steps", "7"), MapperTrainConfig)
    assert short.steps == 7 and lr_at(6, short) == pytest.approx(short.lr)
    ffhq = all_config(parsed("all", "--preset", "ffhq"))
    assert (ffhq.mapper.steps, ffhq.strength.target, ffhq.strength.c_max) == (20_000, 0.7, 0.8)


def test_bars_of_the_figures():
    figures = {
        "mapper": {"wplus_mse_initial": 0.76, "wplus_mse_mean_latent": 0.235, "wplus_mse_final": 0.12},
        "strength": {"abs_err_learned_bracketed": 0.010, "abs_err_fixed_bracketed": 0.014, "abs_err_oracle_bracketed": 0.002,
                     "bracketed_share": 0.85, "target": 0.98, "n_pairs": 64, "fixed_strength": 0.2,
                     "generator_calls_oracle": 5.0},
    }
    summary = evaluation(figures)
    assert summary["mapper"]["ratio_to_mean_latent"] == pytest.approx(0.12 / 0.235)
    assert summary["mapper"]["passes"] and summary["strength"]["passes"]
    assert "(bar 0.6: ok)" in figure_lines(summary)[0]
    worse = evaluation({"mapper": {**figures["mapper"], "wplus_mse_final": 0.15},
                        "strength": {**figures["strength"], "bracketed_share": 0.75}})
    assert not worse["mapper"]["passes"] and not worse["strength"]["passes"]
    assert all(line.endswith("BELOW THE BAR)") or "BELOW THE BAR" in line for line in figure_lines(worse))
