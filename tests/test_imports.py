"""The package's import graph: no cycles, and imports only go down the layers written in ARCHITECTURE.md.

Every import counts, also those inside functions (they are how hidden back-edges crept in before).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "celeblook"


def layers() -> dict[str, int]:
    """``## Layers`` of ARCHITECTURE.md: numbered lines ``N. name, name`` (lowest first) -> {name: N}."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    found = {}
    for number, names in re.findall(r"^(\d+)\.\s+([^\n:]+)", section, re.M):
        for name in names.split(","):
            found[name.strip().strip("`")] = int(number)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The celeblook modules ``path`` imports (absolute names), wherever in the file the import sits."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "celeblook"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "celeblook":
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
    return found - {module}


def _exists(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def layer_of(module: str, order: dict[str, int]) -> int:
    """The layer of the longest name in the list that ``module`` is or lies in (``text.tokenizer`` before ``text``)."""
    parts = module.split(".")[1:]
    for end in range(len(parts), 0, -1):
        if (key := ".".join(parts[:end])) in order:
            return order[key]
    if not parts:
        return order["celeblook"]
    raise AssertionError(f"{module}: '{parts[0]}' is in no layer of ARCHITECTURE.md's '## Layers'")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_imports_only_go_down_the_layers():
    order = layers()
    upward = [
        f"{src} (layer {layer_of(src, order)}) imports {dst} (layer {layer_of(dst, order)})"
        for src, targets in sorted(graph().items()) for dst in sorted(targets)
        if layer_of(dst, order) > layer_of(src, order)
    ]
    assert upward == []


def test_the_checks_catch_a_cycle_and_an_upward_edge():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    order = layers()
    assert layer_of("celeblook.models.clip", order) < layer_of("celeblook.pipeline", order)
    assert layer_of("celeblook.errors", order) < layer_of("celeblook.models", order)
    # a package may span layers: its modules listed by dotted name take their own
    tokenizer, clip, prompts = (layer_of(f"celeblook.{m}", order) for m in ("text.tokenizer", "models.clip", "text.prompts"))
    assert tokenizer < clip < prompts


@pytest.mark.parametrize("module", ["celeblook.factory", "celeblook.pipeline.verbs", "celeblook.export.onnx"])
def test_known_joints_are_seen(module):
    edges = graph()
    assert edges[module], f"{module} imports nothing from the package? the parser is broken"
