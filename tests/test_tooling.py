"""The repository's own tooling: ruff is clean (pyproject.toml), `bash dev.sh <cmd>` runs in the caller's folder, the
README is a front page whose links and the docs' resolve, the code's toolchain citations name real sections, and no module
of the package is over MAX_MODULE_LINES lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import procs
import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400  # a longer module holds more than one concept: split it by concept


def test_ruff_is_clean():
    run = procs.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(REPO)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]


@pytest.mark.skipif(not (Path(os.environ.get("CELEBLOOK_VENV", REPO / ".venv")) / "bin" / "python").exists(),
                    reason="dev.sh's environment (.venv or CELEBLOOK_VENV) is not set up")
def test_no_module_of_the_package_is_over_400_lines():
    lengths = {path.relative_to(REPO).as_posix(): len(path.read_text().splitlines()) for path in (REPO / "celeblook").rglob("*.py")}
    assert len(lengths) > 50  # the package was found
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


def test_dev_sh_runs_commands_in_the_callers_folder(tmp_path):
    """`bash dev.sh python script.py me.jpg` from another folder: relative paths are the caller's, the package imports."""
    (tmp_path / "me.txt").write_text("hello")
    script = "import sys, celeblook; print(open(sys.argv[1]).read(), celeblook.__name__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = procs.run(["bash", str(REPO / "dev.sh"), "python", "-c", script, "me.txt"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "hello celeblook"


README_MAX_LINES = 150  # the front page: what it does, how to try it, the API and the CLI in brief; the rest is in docs/
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target)
CITATION = re.compile(r"toolchain\.md §(\d+(?:\.\d+)*)")
SECTION = re.compile(r"^#{2,} (\d+(?:\.\d+)*)\.? ", re.MULTILINE)  # "## 6. Threads ..." / "### 7.3 WebGPU ..."


def test_the_readme_is_a_front_page_that_keeps_the_spaces_front_matter():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert text.startswith("---\n") and "\nsdk: gradio\n" in text.split("\n---\n", 1)[0] and "app_file: app.py" in text
    for command in ("bash dev.sh app", "bash dev.sh test"):
        assert command in text


def test_every_relative_link_in_the_readme_and_docs_resolves_to_a_file_in_the_repository():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):  # a URL or a place on the same page
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not (path.is_relative_to(REPO) and path.exists()):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert len(pages) > 5 and not broken, broken


def test_every_toolchain_citation_in_the_code_names_a_section_of_docs_toolchain():
    sections = set(SECTION.findall((REPO / "docs" / "toolchain.md").read_text(encoding="utf-8")))
    cited = {}
    for folder in ("celeblook", "tests", "benchmarks", "web/src"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".js", ".mjs") and "node_modules" not in path.parts:
                for number in CITATION.findall(path.read_text(encoding="utf-8")):
                    cited.setdefault(number, []).append(str(path.relative_to(REPO)))
    for path in (REPO / "app.py", REPO / "pyproject.toml", REPO / "requirements.txt"):
        for number in CITATION.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(number, []).append(path.name)
    assert cited, "the code cites no toolchain section: this test no longer checks anything"
    missing = {number: files for number, files in cited.items() if number not in sections}
    assert not missing, f"cited sections missing from docs/toolchain.md: {missing}"


def test_the_wheel_holds_every_file_of_the_package_and_the_celeblook_command(tmp_path):
    """`pip install celeblook` gets the package data read at run time (vocabulary, prompts, weights manifest, model
    configs), the console command, and torch only through the [full] extra."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                            "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("celeblook-*.whl")
    tracked = subprocess.run(["git", "ls-files", "celeblook"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert any(name.endswith(".json") for name in tracked)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = {name.split("/", 1)[1]: zf.read(name).decode() for name in names if ".dist-info/" in name}
    assert not [name for name in tracked if name not in names], "tracked package files missing from the wheel"
    assert "celeblook = celeblook.cli:main" in info["entry_points.txt"]
    requires = [line.split(":", 1)[1].strip() for line in info["METADATA"].splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("onnxruntime") and "extra ==" not in r for r in requires)
    assert [r for r in requires if r.startswith("torch") and "!=2.13.0+cpu" in r and 'extra == "full"' in r]
    assert not [r for r in requires if r.startswith(("torch", "open-clip", "open_clip")) and "extra ==" not in r]
    extras = {line.split(":", 1)[1].strip() for line in info["METADATA"].splitlines() if line.startswith("Provides-Extra:")}
    assert {"runtime", "full", "train", "dev"} <= extras


@pytest.mark.parametrize("missing, says, exit_code", [
    (("torch", "onnxruntime"), "bash dev.sh", 2),  # the system Python: how to get the full install
    (("torch",), "runtime install", 2),
])
def test_the_command_line_without_torch_says_how_to_get_the_full_install(missing, says, exit_code):
    block = "".join(f"sys.modules[{name!r}] = None; " for name in missing)  # as if not installed
    for argv, code in ((["invert", "me.jpg"], exit_code), (["--help"], 0)):
        run = subprocess.run([sys.executable, "-c", f"import sys; {block}from celeblook.cli import main; raise SystemExit(main({argv!r}))"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        assert run.returncode == code, run.stderr[-2000:]
        said = (run.stdout + run.stderr).strip()
        assert says in said and 'pip install "celeblook[full]"' in said and len(said.splitlines()) <= 2 and "Traceback" not in said
        if missing == ("torch", "onnxruntime"):
            assert "runtime install" not in said
