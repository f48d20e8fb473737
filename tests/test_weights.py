"""weights status / download / convert against local stand-ins for the Hub (tests/hub_standin.py) and Drive."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from hub_standin import hub_fixture  # noqa: F401  (the `hub` fixture)
from test_checkpoint import save_hf, save_lightning

from celeblook.cli import main
from celeblook.errors import WeightsError
from celeblook.hub import first_run, weights
from celeblook.models.checkpoint import load_generator
from celeblook.models.mobilestylegan import GeneratorConfig
from celeblook.models.reference_layout import fill_reference

HF_FILE = "mobilestylegan_ffhq_v2.pth"
HF_REPO, HF_REPO_FILE = "public-data/MobileStyleGAN", "models/mobilestylegan_ffhq_v2.pth"
HF_PATH = f"/{HF_REPO}/resolve/{{rev}}/{HF_REPO_FILE}"
PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Stands in for Google Drive: ``routes``: path -> (body, mode); mode 'ok', 'cut' (closes mid-body),
    'stall' (sends 1,000,000 bytes, then nothing for 3 s), 'html'."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, mode = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if mode == "html" else "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                sent = {"cut": len(body) // 2, "stall": 1_000_000}.get(mode, len(body))
                self.wfile.write(body[:sent])
                self.wfile.flush()
                if mode == "stall":
                    time.sleep(3)
                if mode == "cut":
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(name="server")
def server_fixture():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def root(tmp_path, monkeypatch, server, hub) -> Path:
    """An empty weights dir with its own manifest; the Drive entry points at the local server, HF_ENDPOINT at
    the stand-in Hub."""
    root = tmp_path / "weights"
    root.mkdir()
    manifest = json.loads(weights.REPO_MANIFEST.read_text())
    for entry in manifest["files"]:
        if entry["name"] == "mobilestylegan_ffhq.ckpt":
            entry["source"]["url"] = f"{server.url}/drive/ckpt"
            entry["md5"] = hashlib.md5(PAYLOAD).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(root))
    return root


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name not in ("manifest.json", ".hashes.json"))


def cached_blobs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "hf-cache").glob("models--*/blobs/*"))


def test_manifest_lists_every_file_with_provenance():
    files = weights.load_manifest(weights.REPO_MANIFEST.parent)
    names = {f.name for f in files}
    assert {"mobilestylegan_ffhq.ckpt", HF_FILE, "mobilestylegan_ffhq.safetensors",
            "open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors", "efficientformer_l1.snap_dist_in1k.safetensors"} <= names
    by_name = {f.name: f for f in files}
    assert by_name["mobilestylegan_ffhq.ckpt"].md5 == "8de24b4d08049c32dbec8beca5ed2074"
    assert "11Kja0XGE8liLb6R5slNZjF3j3v_6xydt" in by_name["mobilestylegan_ffhq.ckpt"].source["url"]
    assert by_name[HF_FILE].source == {"hub": "public-data/MobileStyleGAN", "file": "models/mobilestylegan_ffhq_v2.pth", "revision": "main"}
    assert by_name["open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors"].source["hub"] == "laion/CLIP-ViT-L-14-laion2B-s32B-b82K"
    assert by_name["efficientformer_l1.snap_dist_in1k.safetensors"].source["hub"] == "timm/efficientformer_l1.snap_dist_in1k"
    for f in files:
        assert f.command.startswith("celeblook ") and f.get in {"download", "convert", "train"}
        assert f.sha256 is None or len(f.sha256) == 64  # never a made-up placeholder
    assert {f.command.split()[2] for f in files if f.get == "train"} == {"mapper", "strength", "encoder"}
    # one command for all of a preset's public weights; dlib's face models, every preset's, are fetched by name
    assert {f.command for f in files if f.get != "train" and f.preset != weights.ANY_PRESET} == {"celeblook weights setup --preset ffhq"}
    dlib = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
    assert {f.command for f in files if f.preset == weights.ANY_PRESET} == {f"celeblook weights download dlib/{n}" for n in dlib}


def test_manifest_names_the_ffhq_presets_student_variant():
    """The student files in the manifest follow the preset: the ImageNet init of its timm variant and the
    trained file the loader looks for (student_path)."""
    from celeblook.models.student import student_path
    from celeblook.presets import get_preset

    variant = get_preset("ffhq").student
    assert variant == "efficientformer_l1"
    init = weights.find_role("ffhq", "student-init", weights.REPO_MANIFEST.parent)
    assert init.name == f"{variant}.snap_dist_in1k.safetensors" and init.source["hub"] == f"timm/{variant}.snap_dist_in1k"
    assert init.sha256 is None and init.md5 is None  # timm publishes no file hash: none is invented
    trained = weights.find_role("ffhq", "student", weights.REPO_MANIFEST.parent)
    assert trained.name == student_path(variant).name and trained.sidecar == f"student_{variant}.json"


def test_hub_download_reports_progress_records_the_sha256_and_links_the_cached_file(root, hub, tmp_path):
    hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD})
    assert weights.find(HF_FILE).sha256 is None
    seen = []
    path = weights.download(HF_FILE, log=lambda _: None, report=lambda *r: seen.append(r))
    assert path == root / HF_FILE and path.read_bytes() == PAYLOAD
    assert seen[0] == (HF_FILE, 0, len(PAYLOAD)) and seen[-1] == (HF_FILE, len(PAYLOAD), len(PAYLOAD))
    assert leftovers(root) == [HF_FILE]
    assert weights.find(HF_FILE).sha256 == SHA and weights.find(HF_FILE).size == len(PAYLOAD)  # recorded
    assert json.loads((root / ".hashes.json").read_text())[HF_FILE]["sha256"] == SHA
    [blob] = cached_blobs(tmp_path)  # one copy on disk: the weights dir links to huggingface_hub's cache
    assert blob.name == SHA and os.path.samefile(blob, path)
    assert weights.check(weights.find(HF_FILE)).detail == "sha256 verified"
    before = len(hub.requests)
    weights.download(HF_FILE, log=lambda _: None)  # present and verified: no request
    assert len(hub.requests) == before


def test_revision_is_passed_to_the_hub(root, hub):
    hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD}, branch="v2.0")
    assert main(["weights", "download", HF_FILE, "--revision", "v2.0"]) == 0
    assert {(m, p) for m, p, _ in hub.requests} == {("HEAD", HF_PATH.format(rev="v2.0")), ("GET", HF_PATH.format(rev="v2.0"))}
    assert weights.find(HF_FILE).sha256 is None  # another revision's hash is not the manifest's


def test_dropped_connection_is_resumed_where_it_stopped(root, hub):
    hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD})
    hub.cut[HF_PATH.format(rev="main")] = 120_000  # two whole chunks of 50,000 bytes and part of a third
    weights.download(HF_FILE, log=lambda _: None)
    gets = [rng for m, _, rng in hub.requests if m == "GET"]
    assert gets == [None, "bytes=100000-"]  # the second request asks for the rest only
    assert (root / HF_FILE).read_bytes() == PAYLOAD


def test_interrupted_download_keeps_nothing_and_a_retry_succeeds(root, hub, tmp_path, capsys):
    hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD})
    hub.cut[HF_PATH.format(rev="main")] = 150_000
    hub.fail_ranges = True  # the resume is answered 503
    assert main(["weights", "download", HF_FILE]) == 2
    err = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]  # after the progress bar
    assert err.startswith(f"error: download of {HF_FILE} interrupted after 150,000 of 300,000 bytes (HTTP 503")
    assert leftovers(root) == [] and cached_blobs(tmp_path) == []  # neither a file nor a partial blob
    hub.fail_ranges = False
    assert main(["weights", "download", HF_FILE]) == 0
    assert (root / HF_FILE).read_bytes() == PAYLOAD


@pytest.mark.parametrize("how", ["manifest hash", "hub etag"])
def test_corrupted_download_is_refused_and_forgotten(root, hub, tmp_path, how):
    if how == "manifest hash":  # the manifest knows the hash; the Hub holds other bytes
        weights.record_hash(HF_FILE, SHA, len(PAYLOAD), root)
        hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD[::-1]})
    else:  # the bytes change on the way: they no longer match the sha256 the Hub announced
        hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD})
        hub.corrupt.add(HF_PATH.format(rev="main"))
    with pytest.raises(WeightsError, match=r"refused: sha256 .* does not match"):
        weights.download(HF_FILE, log=lambda _: None)
    assert leftovers(root) == [] and cached_blobs(tmp_path) == []  # not kept in the cache either
    hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD})
    hub.corrupt.clear()
    assert weights.download(HF_FILE, log=lambda _: None).read_bytes() == PAYLOAD


@pytest.mark.parametrize("answer", ["relative etag", "absolute etag", "commit"])
def test_a_hostile_hub_answer_stops_the_download_before_anything_is_written(root, hub, tmp_path, capsys, answer):
    """huggingface_hub names the blob and its lock after the ETag and the snapshot after X-Repo-Commit: from a
    hostile HF_ENDPOINT those are paths out of its cache (blobs/../../../x is tmp_path/x)."""
    hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD})
    bad = {"relative etag": '"../../../x"', "absolute etag": f'"{tmp_path / "elsewhere" / "x"}"'}.get(answer)
    hub.etag, hub.repo_commit = bad, "../../outside" if answer == "commit" else None
    before = set(tmp_path.rglob("*"))
    assert main(["weights", "download", HF_FILE]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(f"error: {hub.url} answered ")
    assert err.strip().endswith("; check HF_ENDPOINT")
    assert set(tmp_path.rglob("*")) == before  # nothing anywhere: not in the cache, not beside it


def test_offline_reads_only_the_cache_and_says_so_in_one_line(root, hub, monkeypatch, capsys):
    hub.commit(HF_REPO, {HF_REPO_FILE: PAYLOAD})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "download", HF_FILE]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {HF_FILE} is not in the Hugging Face cache and offline mode is on (HF_HUB_OFFLINE); "
                   f"unset it to download {HF_REPO}/{HF_REPO_FILE} at main on {hub.url}")
    assert hub.requests == [] and leftovers(root) == []
    # a file already in the cache (as a Space's preload_from_hub leaves it) is placed without the network
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    weights.download(HF_FILE, log=lambda _: None)
    (root / HF_FILE).unlink()
    (root / "manifest.json").write_text(weights.REPO_MANIFEST.read_text())  # forget the recorded hash too
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests = len(hub.requests)
    assert weights.download(HF_FILE, log=lambda _: None).read_bytes() == PAYLOAD
    assert len(hub.requests) == requests


def test_a_stalled_url_download_reports_the_bytes_that_arrived(root, server, monkeypatch, capsys):
    """issue 11 item 10: 1,000,000 bytes arrive, then nothing; the message said "after 0 bytes"."""
    monkeypatch.setattr(weights, "STALL_SECONDS", 1.0)
    server.routes["/drive/ckpt"] = (os.urandom(2_000_000), "stall")
    assert main(["weights", "download", "mobilestylegan_ffhq.ckpt"]) == 2
    err = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert err.startswith("error: download of mobilestylegan_ffhq.ckpt interrupted after 1,000,000 of 2,000,000 bytes (")
    assert "timed out" in err and leftovers(root) == []


def test_url_download_checks_the_published_md5(root, server):
    server.routes["/drive/ckpt"] = (PAYLOAD[:-1] + bytes([PAYLOAD[-1] ^ 1]), "ok")  # one bit off (never equal)
    with pytest.raises(WeightsError, match=r"md5 .* does not match the published"):
        weights.download("mobilestylegan_ffhq.ckpt", log=lambda _: None)
    server.routes["/drive/ckpt"] = (b"<html>quota exceeded</html>", "html")
    with pytest.raises(WeightsError, match=r"answered with a web page"):
        weights.download("mobilestylegan_ffhq.ckpt", log=lambda _: None)
    assert leftovers(root) == []
    server.routes["/drive/ckpt"] = (PAYLOAD, "ok")
    weights.download("mobilestylegan_ffhq.ckpt", log=lambda _: None)
    assert weights.find("mobilestylegan_ffhq.ckpt").sha256 == SHA  # recorded after the md5 check passed
    assert weights.check(weights.find("mobilestylegan_ffhq.ckpt")).detail == "sha256 verified"


def test_not_downloadable_and_unknown_names(root, capsys):
    assert main(["weights", "download", "ffhq/mapper.safetensors"]) == 2
    assert "made with: celeblook train mapper" in capsys.readouterr().err
    assert main(["weights", "download", "nope.bin"]) == 2
    assert "unknown weight file 'nope.bin'" in capsys.readouterr().err


def test_status_present_missing_corrupt_with_commands(root, server, capsys):
    server.routes["/drive/ckpt"] = (PAYLOAD, "ok")
    weights.download("mobilestylegan_ffhq.ckpt", log=lambda _: None)
    (root / "efficientformer_l1.snap_dist_in1k.safetensors").write_bytes(b"x")  # no published hash: present, unverified
    assert main(["weights", "status"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "present" in lines["mobilestylegan_ffhq.ckpt"] and "sha256 verified" in lines["mobilestylegan_ffhq.ckpt"]
    assert "present" in lines["efficientformer_l1.snap_dist_in1k.safetensors"]
    assert "no published hash" in lines["efficientformer_l1.snap_dist_in1k.safetensors"]
    assert lines[HF_FILE].split()[1] == "missing" and lines[HF_FILE].endswith("-> celeblook weights setup --preset ffhq")
    assert lines["ffhq/mapper.safetensors"].endswith("-> celeblook train mapper --preset ffhq --out weights/ffhq")

    ckpt = root / "mobilestylegan_ffhq.ckpt"
    ckpt.write_bytes(PAYLOAD[:-1] + b"!")  # same size, new mtime: the cache must not hide it
    assert main(["weights", "status"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("mobilestylegan_ffhq.ckpt"))
    assert "corrupt" in line and "sha256" in line and line.endswith("-> celeblook weights setup --preset ffhq")


def test_status_uses_the_hash_cache(root):
    path = root / "mobilestylegan_ffhq.ckpt"
    path.write_bytes(PAYLOAD)
    assert weights.check(weights.find("mobilestylegan_ffhq.ckpt")).state == "present"
    cache = json.loads((root / ".hashes.json").read_text())
    cache["mobilestylegan_ffhq.ckpt"]["md5"] = "0" * 32  # same size and mtime: status trusts the cache
    (root / ".hashes.json").write_text(json.dumps(cache))
    assert weights.check(weights.find("mobilestylegan_ffhq.ckpt")).state == "corrupt"


def test_status_for_tiny_needs_nothing(root, capsys):
    assert main(["weights", "status", "--preset", "tiny"]) == 0
    assert "no files needed" in capsys.readouterr().out


def test_convert_writes_safetensors_sidecar_and_manifest_hash(root, capsys):
    sd = fill_reference(GeneratorConfig(), base_seed=5)
    save_hf(sd, root / HF_FILE)
    assert main(["weights", "convert"]) == 0
    out = root / "mobilestylegan_ffhq.safetensors"
    sidecar = json.loads((root / "mobilestylegan_ffhq.json").read_text())
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert sidecar["sha256"] == sha and sidecar["source"]["file"] == HF_FILE
    assert sidecar["source"]["sha256"] == hashlib.sha256((root / HF_FILE).read_bytes()).hexdigest()
    assert sidecar["w_avg"]["n_samples"] == 10_000
    assert 43e6 < out.stat().st_size < 45e6
    assert weights.find("mobilestylegan_ffhq.safetensors").sha256 == sha  # recorded in the manifest
    assert weights.check(weights.find("mobilestylegan_ffhq.safetensors")).detail == "sha256 verified"
    g = load_generator(out)
    assert torch.equal(g.w_avg, load_generator(root / HF_FILE).w_avg)

    from celeblook.factory import create_generator

    ffhq = create_generator("ffhq")
    w = torch.randn(1, 23, 512, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ffhq(w, size=16), g(w, size=16))


def test_convert_to_a_chosen_file(tmp_path, root):
    tiny = fill_reference(GeneratorConfig(channels=(64, 64, 32, 16)), base_seed=2)
    src = save_lightning(tiny, tmp_path / "custom.ckpt")
    assert main(["weights", "convert", str(src), "--out", str(tmp_path / "custom.safetensors")]) == 0
    g = load_generator(tmp_path / "custom.safetensors")
    assert g.config.channels == (64, 64, 32, 16)
    assert weights.find("mobilestylegan_ffhq.safetensors").sha256 is None  # manifest untouched


def test_convert_without_a_source_names_the_command(root, capsys):
    assert main(["weights", "convert"]) == 2
    assert "get one with: celeblook weights setup --preset ffhq" in capsys.readouterr().err


def test_bare_download_fetches_the_presets_missing_defaults(root, hub, capsys):
    repos = {HF_REPO: HF_REPO_FILE, "laion/CLIP-ViT-L-14-laion2B-s32B-b82K": "open_clip_model.safetensors",
             "timm/efficientformer_l1.snap_dist_in1k": "model.safetensors"}
    for i, (repo, file) in enumerate(repos.items()):
        hub.commit(repo, {file: PAYLOAD[i:]})
    assert main(["weights", "download"]) == 0
    assert sorted(p for m, p, _ in hub.requests if m == "GET") == sorted(f"/{r}/resolve/main/{f}" for r, f in repos.items())
    assert leftovers(root) == sorted([HF_FILE, "open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors",
                                      "efficientformer_l1.snap_dist_in1k.safetensors"])
    requests = len(hub.requests)
    assert main(["weights", "download"]) == 0  # all present now: nothing fetched again
    assert len(hub.requests) == requests and "nothing to download" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# first run (the app's start): ensure_defaults / weights setup

CLIP_REPO, CLIP_REPO_FILE = "laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "open_clip_model.safetensors"
CLIP_FILE = "open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors"
TINY_HINT = "or try the app on untrained models: `CELEBLOOK_PRESET=tiny bash dev.sh app`"


def missing_line(why: str, fix: str = "get them with `celeblook weights setup --preset ffhq`") -> str:
    return f"weights for preset 'ffhq' missing: {HF_FILE}, {CLIP_FILE} ({why}); {fix}, {TINY_HINT}"


def test_first_run_fetches_with_progress_converts_and_then_needs_nothing(root, hub, tmp_path):
    save_hf(fill_reference(GeneratorConfig(), base_seed=5), tmp_path / "g.pth")
    hub.commit(HF_REPO, {HF_REPO_FILE: (tmp_path / "g.pth").read_bytes()})
    hub.commit(CLIP_REPO, {CLIP_REPO_FILE: PAYLOAD})
    seen: dict[str, list] = {}
    notices = first_run.ensure_defaults("ffhq", progress=lambda name, done, total: seen.setdefault(name, []).append((done, total)))
    size = (tmp_path / "g.pth").stat().st_size
    assert seen[HF_FILE][-1] == (size, size) and seen[CLIP_FILE][-1] == (len(PAYLOAD), len(PAYLOAD))
    assert len(seen[HF_FILE]) > 2  # reported as it arrives, not only at the end
    assert not any("missing" in line for line in notices), notices
    assert f"{CLIP_FILE}: 300,000 bytes, sha256 {SHA[:12]}... verified, recorded in the manifest" in notices
    generator = weights.find("mobilestylegan_ffhq.safetensors")
    assert weights.check(generator).detail == "sha256 verified"
    assert first_run.app_needs("ffhq") == []
    requests = len(hub.requests)
    assert first_run.ensure_defaults("ffhq") == [] and len(hub.requests) == requests


@pytest.mark.parametrize("how", ["offline", "opted out", "unreachable", "not on the Hub"])
def test_first_run_without_the_files_says_what_is_missing_in_one_line(root, hub, monkeypatch, how):
    why = {"offline": "offline mode is on (HF_HUB_OFFLINE)",
           "opted out": "automatic download is off: CELEBLOOK_NO_DOWNLOAD=1",
           "unreachable": "http://127.0.0.1:9 does not answer",
           "not on the Hub": f"download of {HF_FILE} failed: {HF_REPO}/{HF_REPO_FILE} at main on {hub.url} "
                             "does not exist (or is private)"}[how]
    if how == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    elif how == "opted out":
        monkeypatch.setenv("CELEBLOOK_NO_DOWNLOAD", "1")
    elif how == "unreachable":
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.perf_counter()
    assert first_run.ensure_defaults("ffhq") == [missing_line(why)]
    assert time.perf_counter() - start < 10  # no long retries
    assert leftovers(root) == []
    if how != "not on the Hub":
        assert hub.requests == []


def test_first_run_links_files_a_space_preloaded_into_the_cache_without_a_request(root, hub, monkeypatch):
    hub.commit(CLIP_REPO, {CLIP_REPO_FILE: PAYLOAD})
    from huggingface_hub import hf_hub_download

    hf_hub_download(CLIP_REPO, CLIP_REPO_FILE, endpoint=hub.url)  # what preload_from_hub does at build time
    hub.requests.clear()
    monkeypatch.setenv("CELEBLOOK_NO_DOWNLOAD", "1")
    notices = first_run.ensure_defaults("ffhq")
    assert (root / CLIP_FILE).read_bytes() == PAYLOAD and hub.requests == []
    assert notices[-1] == (f"weights for preset 'ffhq' missing: {HF_FILE} (automatic download is off: CELEBLOOK_NO_DOWNLOAD=1); "
                           f"get them with `celeblook weights setup --preset ffhq`, {TINY_HINT}")


def test_first_run_of_the_tiny_preset_needs_nothing(root, hub):
    assert first_run.ensure_defaults("tiny") == [] and hub.requests == []


def test_setup_command_exits_2_with_the_line(root, hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "setup", "--preset", "ffhq"]) == 2
    # the command itself never answers "run this command": it says what to do instead
    fix = f"check the network (or HF_ENDPOINT, HF_TOKEN) and run it again, or put the files in {root}"
    assert capsys.readouterr().err.strip() == f"error: {missing_line('offline mode is on (HF_HUB_OFFLINE)', fix)}"


def test_first_run_needs_no_mirror_when_a_generator_source_is_here(root):
    assert [f.name for f in first_run.app_needs("ffhq")] == [HF_FILE, CLIP_FILE]
    (root / "mobilestylegan_ffhq.ckpt").write_bytes(PAYLOAD)  # the Drive checkpoint (md5 as published here)
    assert [f.name for f in first_run.app_needs("ffhq")] == [CLIP_FILE]  # setup converts the checkpoint instead
