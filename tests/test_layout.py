"""Package structure: no import cycle, file formats read only through matchforge.io."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PKG = REPO / "src" / "matchforge"


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every ``matchforge`` module -> the ``matchforge`` modules it imports (at top level or inside functions)."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t.startswith("matchforge"):
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if m == "matchforge" or n.startswith(m + "."):  # a module importing its own package's __init__
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and graph["matchforge.loftr.data"]  # the walk found the package and its imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_files_are_read_and_written_only_through_io():
    pattern = re.compile(r"\bcv2\.(imread|imwrite)\(|\bh5py\.File\(")
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in PKG.rglob("*.py") if "io" not in p.relative_to(PKG).parts[:1]
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == [], offenders


def test_loftr_run_defaults_live_only_in_the_schema():
    """A LoFTR run option's default is written once, in src/matchforge/schemas/loftr.schema.yaml: the code reads
    filled-in options (model_defaults), never `.get(option, <a default of its own>)`."""
    from matchforge.loftr.model import model_defaults

    options = set(model_defaults({}))
    pattern = re.compile(r"""\.get\(\s*["'](\w+)["']\s*,""")
    offenders = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in sorted((PKG / "loftr").rglob("*.py"))
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 for m in pattern.finditer(line) if m.group(1) in options]
    assert offenders == [], offenders
