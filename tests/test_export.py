"""ONNX export: graph form, manifest, ORT-vs-torch parity (fp32 <= 1e-4; fp16/int8 within measured tolerances)."""

import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from _export_tiny import tiny_export, tiny_graphs, tiny_models

from celeblook.errors import InputError, WeightsError
from celeblook.export.check import check_dir
from celeblook.export.graphs import generator_graphs
from celeblook.export.onnx import export_models, random_feeds
from celeblook.export.parity import FP16_REL, FP32_ABS, INT8_COSINE
from celeblook.export.synthesis_graph import ExportedSynthesis, coefficients_by_channel, haar_mix_matrix, pixel_shuffle
from celeblook.models.mobilestylegan import Generator, GeneratorConfig, haar_idwt
from celeblook.models.reference_layout import fill_reference
from celeblook.runtime.ort import open_session

SLOW = os.environ.get("CELEBLOOK_SLOW") == "1"


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def manifest(export_dir):
    return json.loads((export_dir / "manifest.json").read_text())


def ops(path):
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def test_haar_mix_matrix_is_the_inverse_haar_before_the_shuffle():
    x = torch.randn(2, 12, 5, 7)
    planes = torch.einsum("pq,nqhw->nphw", haar_mix_matrix(), x)
    torch.testing.assert_close(torch.nn.functional.pixel_shuffle(planes, 2), haar_idwt(x), atol=1e-6, rtol=0)


def test_pixel_shuffle_as_two_transposes_is_the_pixel_shuffle():
    x = torch.randn(3, 20, 5, 7)
    assert torch.equal(pixel_shuffle(x), torch.nn.functional.pixel_shuffle(x, 2))


def test_coefficients_by_channel_gathers_each_channels_four_coefficients():
    perm = coefficients_by_channel(3).tolist()
    assert perm == [0, 3, 4, 5, 1, 6, 7, 8, 2, 9, 10, 11]  # LL_c, then bands c*3+k after the 3 LL channels


@pytest.mark.parametrize("size", [256, 512, 1024])
def test_exported_synthesis_equals_the_generator(size):
    generator = tiny_models()["generator"]
    wplus = torch.randn(2, 23, 512, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        torch.testing.assert_close(ExportedSynthesis(generator.synthesis, size)(wplus), generator(wplus, size=size), atol=1e-5, rtol=0)


def test_exported_synthesis_is_built_on_the_generators_device():
    # a GPU benchmark builds it from a CUDA generator; "meta" stands in for any device that is not the CPU
    synthesis = Generator(GeneratorConfig(channels=(16, 16, 8, 8, 8, 8, 8, 8))).synthesis.to("meta")
    exported = ExportedSynthesis(synthesis, 1024)
    assert {t.device.type for t in exported.state_dict().values()} == {"meta"}
    assert exported(torch.empty(1, 23, 512, device="meta")).shape == (1, 3, 1024, 1024)


def test_every_file_is_listed_single_and_hashed(export_dir, manifest):
    names = {e["file"] for e in manifest["files"]}
    expected = {f"{m}.onnx" for m in ["mapping", "synthesis_1024", "synthesis_512", "synthesis_256", "image_encoder",
                                      "text_encoder", "mapper", "strength"]}
    assert expected <= names
    assert {n.replace(".onnx", "_fp16.onnx") for n in expected} <= names
    assert "text_encoder_int8.onnx" in names
    assert sorted(p.name for p in export_dir.iterdir()) == sorted(names | {"manifest.json"})  # no .onnx.data files
    for entry in manifest["files"]:
        assert entry["opset"] == 18 and entry["bytes"] == (export_dir / entry["file"]).stat().st_size
        assert all(spec["shape"][0] == "batch" for spec in entry["inputs"] + entry["outputs"])
    by_file = {e["file"]: e for e in manifest["files"]}
    assert by_file["synthesis_512.onnx"]["inputs"] == [{"name": "wplus", "shape": ["batch", 23, 512], "dtype": "float32"}]
    assert by_file["synthesis_512.onnx"]["outputs"] == [{"name": "image", "shape": ["batch", 3, 512, 512], "dtype": "float32"}]
    assert by_file["text_encoder.onnx"]["inputs"][0] == {"name": "tokens", "shape": ["batch", "length"], "dtype": "int64"}
    assert by_file["text_encoder_int8.onnx"]["inputs"][0]["shape"] == ["batch", "length"]
    assert by_file["text_encoder.onnx"]["meta"]["context_length"] == 77  # the longest L the graph takes
    assert by_file["synthesis_1024_fp16.onnx"]["inputs"][0]["dtype"] == "float32"  # keep_io_types
    assert len(manifest["constants"]["w_avg"]) == 512 and manifest["constants"]["clip"]["size"] == 224


def test_synthesis_graphs_are_spec_form(export_dir):
    for size in (256, 512, 1024):
        counts = ops(export_dir / f"synthesis_{size}.onnx")
        assert "ConvTranspose" not in counts and "ReduceSum" not in counts and "Sqrt" not in counts  # demod folded
        n_blocks = 1 + int(np.log2(size // 16))
        assert counts["MatMul"] == n_blocks  # each block's upsample is one MatMul, not Split/Add/Sub/Concat
        assert "Split" not in counts and "Sub" not in counts and "DepthToSpace" not in counts
        assert counts["Transpose"] == 2 * (n_blocks + 1)  # one two-transpose pixel shuffle per block + the final one
    names_256 = {i.name for i in onnx.load(str(export_dir / "synthesis_256.onnx")).graph.initializer}
    assert not any("blocks.5" in n or "blocks.6" in n or "head1" in n for n in names_256)  # only the blocks it needs


def test_fp32_parity_at_batch_1_and_3(export_dir, manifest):
    graphs = {g.name: g for g in tiny_graphs()}
    for entry in manifest["files"]:
        if entry["precision"] != "fp32":
            continue
        session = open_session(export_dir / entry["file"])
        for batch in (1, 3):
            feeds = random_feeds(entry, batch=batch, seed=batch)
            got = session.run(None, feeds)
            want = graphs[entry["model"]].reference(feeds)
            assert got[0].shape == want[0].shape
            assert np.abs(got[0] - want[0]).max() <= FP32_ABS, entry["file"]
        assert entry["parity"]["ok"] and entry["parity"]["max_abs_diff"] <= FP32_ABS


def test_reduced_precision_within_documented_tolerances(manifest):
    rows = {e["file"]: e["parity"] for e in manifest["files"]}
    for name, parity in rows.items():
        if name.endswith("_fp16.onnx"):
            assert parity["max_rel_diff"] <= FP16_REL, name
        if name.endswith("_int8.onnx"):
            assert parity["min_cosine"] >= INT8_COSINE, name
    assert rows["synthesis_1024_fp16.onnx"]["max_rel_diff"] > 0  # it really is a different graph


def test_check_dir_passes_then_catches_a_changed_file(export_dir, tmp_path):
    rows = check_dir(export_dir, tiny_graphs())
    assert rows and all(r["ok"] for r in rows)
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in export_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / "mapper.onnx").write_bytes((copy / "mapper.onnx").read_bytes() + b"\0")
    with pytest.raises(WeightsError, match="sha256"):
        check_dir(copy, tiny_graphs())
    with pytest.raises(InputError, match="manifest"):
        check_dir(tmp_path)


def test_check_refuses_broken_manifests_in_one_line(export_dir, manifest, tmp_path):
    traversal = json.loads(json.dumps(manifest))
    traversal["files"][0]["file"] = "../" + traversal["files"][0]["file"]
    unknown_preset = {**manifest, "source": {"preset": "huge"}}
    cases = {
        "{not json": "is not valid JSON",
        "[1, 2]": "is not a CelebrityLook export manifest",
        json.dumps({**manifest, "files": [{"file": "mapping.onnx"}]}): "is not a CelebrityLook export manifest",
        json.dumps(traversal): "lists '../mapping.onnx', which is not a file name in the export directory",
        json.dumps(unknown_preset): "the manifest's source: unknown preset 'huge'",
    }
    for i, (text, says) in enumerate(cases.items()):
        broken = tmp_path / str(i)
        broken.mkdir()
        (broken / "manifest.json").write_text(text)
        with pytest.raises(InputError, match=re.escape(says)) as err:
            check_dir(broken)
        assert "\n" not in str(err.value)


def test_real_size_generator_parity(tmp_path):
    """The ffhq configuration (random weights, fill_reference): mapping + 256 exit always, all exits with CELEBLOOK_SLOW=1
    (in CI the rehearsal, tests/test_rehearsal.py, exports every exit at real size with its parity checked)."""
    sd = fill_reference(GeneratorConfig(), base_seed=7)
    generator = Generator().load_reference(sd, w_avg=sd["style_mean"])
    sizes = (1024, 512, 256) if SLOW else (256,)
    path = export_models(generator_graphs(generator, sizes), tmp_path)
    entries = json.loads(path.read_text())["files"]
    assert [e["file"] for e in entries] == ["mapping.onnx", *(f"synthesis_{s}.onnx" for s in sizes)]
    for entry in entries:
        assert entry["parity"]["max_abs_diff"] <= FP32_ABS, entry
        assert entry["parity"]["min_cosine"] > 0.999999, entry


def test_real_student_variant_parity(tmp_path):
    """The ffhq student (efficientformer_l1 + projection, seeded random weights) exports at fp32 parity."""
    from celeblook.export.graphs import image_encoder_graph
    from celeblook.models.image_encoder import seeded_init
    from celeblook.models.student import StudentConfig, StudentEncoder
    from celeblook.presets import get_preset

    with seeded_init(0):
        student = StudentEncoder(StudentConfig.from_preset(get_preset("ffhq"))).eval().requires_grad_(False)
    entry = json.loads(export_models([image_encoder_graph(student)], tmp_path).read_text())["files"][0]
    assert entry["inputs"][0]["shape"] == ["batch", 3, 224, 224] and entry["outputs"][0]["shape"] == ["batch", 768]
    assert entry["parity"]["max_abs_diff"] <= FP32_ABS


@pytest.mark.skipif(not SLOW, reason="ViT-L/14 towers take minutes and ~4 GB to export: set CELEBLOOK_SLOW=1 "
                                      "(tests/test_rehearsal.py exports both with their parity checked)")
def test_real_clip_towers_parity(tmp_path):
    """Covered in CI by the rehearsal (tests/test_rehearsal.py): its export checks both towers' parity at real size."""
    from celeblook.export.graphs import image_encoder_graph, text_encoder_graph
    from celeblook.models.clip import ClipSpec, build_clip

    clip = build_clip(ClipSpec.resolve("ViT-L-14", "laion2b_s32b_b82k"), None, seed=0)
    graphs = [image_encoder_graph(clip.visual, "image_encoder_teacher"),
              text_encoder_graph(clip.text, clip.context_length, clip.tokenizer.vocab_size)]
    entries = json.loads(export_models(graphs, tmp_path, int8=("text_encoder",)).read_text())["files"]
    for entry in entries:
        assert entry["parity"]["ok"], entry


def test_cli_export_then_check(tmp_path, capsys):
    from celeblook.cli import main

    out = tmp_path / "onnx"
    assert main(["export", "onnx", "--preset", "tiny", "--models", "mapping", "synthesis_256", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[1/2] mapping.onnx" in printed and "[2/2] synthesis_256.onnx" in printed
    assert main(["export", "check", str(out)]) == 0
    assert "all 2 files within tolerance" in capsys.readouterr().out
    assert main(["export", "onnx", "--preset", "tiny", "--models", "nope", "--out", str(out)]) == 2
    assert main(["export", "onnx", "--preset", "tiny", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_export_onnx_refuses_an_out_that_cannot_be_a_directory(tmp_path, capsys):
    from celeblook.cli import main

    (tmp_path / "file").write_text("not a directory")
    for out, says in [(tmp_path / "file", "it exists and is not a directory"), (tmp_path / "file" / "sub", "Not a directory"),
                      (Path("/proc/celeblook/x"), "No such file or directory")]:
        assert main(["export", "onnx", "--preset", "tiny", "--models", "mapping", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err and str(out) in err, err
    assert (tmp_path / "file").read_text() == "not a directory"


@pytest.fixture()
def no_weights(tmp_path, monkeypatch):
    """An empty weights folder and no OpenCLIP weights anywhere (the Hugging Face cache included)."""
    from celeblook.models.clip import ClipSpec

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(ClipSpec, "find_weights", lambda self: None)
    return tmp_path / "weights"


def test_export_everything_exports_what_has_weights_and_lists_the_rest(tmp_path, no_weights, monkeypatch, capsys):
    """`export onnx --checkpoint X` without CLIP or trained heads: the generator's graphs, and why not the rest."""
    from test_checkpoint import save_hf

    import celeblook.export.preset as preset_export
    from celeblook.cli import main
    from celeblook.models.reference_layout import fill_reference
    from celeblook.presets import get_preset

    chosen = {}

    def export_models(graphs, out_dir, **options):  # exporting itself is tested above: here, what gets chosen
        chosen.update(graphs=[g.name for g in graphs], skipped=options["skipped"])
        manifest = Path(out_dir) / "manifest.json"
        manifest.write_text(json.dumps({"files": [], "skipped": options["skipped"]}))
        return manifest

    monkeypatch.setattr(preset_export, "export_models", export_models)
    checkpoint = save_hf(fill_reference(get_preset("tiny").generator, base_seed=3), tmp_path / "generator.pth")
    assert main(["export", "onnx", "--preset", "ffhq", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "onnx")]) == 0
    assert chosen["graphs"] == ["mapping", "synthesis_1024", "synthesis_512", "synthesis_256"]
    assert sorted(chosen["skipped"]) == ["image_encoder", "mapper", "strength", "text_encoder"]
    printed = capsys.readouterr().out.splitlines()
    listed = [line for line in printed if line.startswith("skipped ")]
    assert len(listed) == 4, printed
    assert (listed[0].startswith("skipped text_encoder: OpenCLIP ViT-L-14 weights (laion2b_s32b_b82k) not found")
            and "`celeblook weights setup --preset ffhq`" in listed[0])
    assert listed[1].startswith("skipped image_encoder: no trained student encoder") and "train encoder" in listed[1]
    assert listed[2].startswith("skipped mapper: mapper missing") and "`celeblook train mapper --preset ffhq" in listed[2]
    assert listed[3].startswith("skipped strength: strength missing") and "`celeblook train strength --preset ffhq" in listed[3]

    # a model asked for by name is still required; with no generator either there is nothing to export
    assert main(["export", "onnx", "--preset", "ffhq", "--checkpoint", str(checkpoint), "--models", "text_encoder",
                 "--out", str(tmp_path / "onnx")]) == 2
    assert "OpenCLIP ViT-L-14 weights" in capsys.readouterr().err
    assert main(["export", "onnx", "--preset", "ffhq", "--out", str(tmp_path / "onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nothing to export: no weights for any of mapping, synthesis_1024, synthesis_512, "
                          "synthesis_256, mapper, text_encoder, image_encoder, strength (") and len(err.splitlines()) == 1, err
    assert chosen["graphs"] == ["mapping", "synthesis_1024", "synthesis_512", "synthesis_256"]  # not called again


def test_the_refiner_is_its_own_graph_with_an_fp16_variant_and_its_meta(manifest):
    by_file = {e["file"]: e for e in manifest["files"]}
    refiner = by_file["refiner.onnx"]
    assert [i["name"] for i in refiner["inputs"]] == ["photo", "reconstruction"]
    assert refiner["inputs"][0]["shape"] == ["batch", 3, 256, 256]
    assert refiner["outputs"] == [{"name": "residual", "shape": ["batch", 23, 512], "dtype": "float32"}]
    assert refiner["meta"] == {"render_size": 256, "input_size": 64, "iterations": 2}
    assert refiner["parity"]["ok"] and by_file["refiner_fp16.onnx"]["parity"]["ok"]
    assert refiner["parity"]["max_abs_diff"] > 0 or refiner["parity"]["min_cosine"] > 0.999  # a residual, not zeros


def test_cli_exports_the_heads_refiner_with_the_generator_exit_it_renders_at(tmp_path, capsys):
    from tiny_heads import save_tiny_heads, save_tiny_refiner

    from celeblook.cli import main

    heads = save_tiny_heads(tmp_path / "heads")
    out = tmp_path / "onnx"
    args = ["export", "onnx", "--preset", "tiny", "--heads", str(heads), "--out", str(out)]
    assert main([*args, "--models", "refiner", "synthesis_256"]) == 2  # asked for, but the heads have none
    err = capsys.readouterr().err
    assert "refiner weights missing" in err and "train refiner" in err and len(err.strip().splitlines()) == 1, err
    save_tiny_refiner(heads, varied=True)
    assert main([*args, "--models", "refiner", "synthesis_256"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["file"] for e in manifest["files"]] == ["synthesis_256.onnx", "synthesis_64.onnx", "refiner.onnx"]
    assert manifest["files"][2]["meta"]["render_size"] == 64 and manifest["files"][2]["parity"]["ok"]
    capsys.readouterr()
    assert main(["export", "check", str(out)]) == 0
    assert "all 3 files within tolerance" in capsys.readouterr().out
