"""Package structure: no import cycle, file formats read only through matchforge.io."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from testkit import REPO

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


# Parameters whose name happens to be an option's but which are not that option: where tensors go, and seeds of
# helpers that no config reaches.
NOT_OPTIONS = {("device", "cpu"), ("bootstrap", "seed")}


def schema_defaults_by_name() -> dict[str, list]:
    """Every option with a default in src/matchforge/schemas/*.schema.yaml: name -> its defaults (one per schema)."""
    import yaml

    found: dict[str, list] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and "default" in sub:
                    found.setdefault(key, []).append(sub["default"])
            for sub in node.values():
                walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    for path in sorted((PKG / "schemas").glob("*.schema.yaml")):
        walk(yaml.safe_load(path.read_text()))
    return found


def repeated_defaults(source: str, defaults: dict[str, list]) -> list[tuple[int, str]]:
    """Places in ``source`` that write a schema default again: ``x.get("<option>", <its default>)`` and a function
    parameter named after an option with that option's default as its own."""

    def literal(node: ast.AST):
        try:
            return True, ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return False, None

    def repeats(name: str, node: ast.AST) -> bool:
        ok, value = literal(node)
        value = list(value) if isinstance(value, tuple) else value  # YAML has no tuples
        return ok and value is not None and any(
            value == d and (type(value) is type(d) or {type(value), type(d)} == {int, float}) for d in defaults[name])

    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and len(node.args) == 2:
            ok, key = literal(node.args[0])
            if ok and isinstance(key, str) and key in defaults and repeats(key, node.args[1]):
                out.append((node.lineno, f".get({key!r}, {ast.unparse(node.args[1])})"))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = a.posonlyargs + a.args
            pairs = list(zip(positional[len(positional) - len(a.defaults):], a.defaults))
            pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for arg, default in pairs:
                if arg.arg in defaults and repeats(arg.arg, default) \
                        and (arg.arg, literal(default)[1]) not in NOT_OPTIONS and (node.name, arg.arg) not in NOT_OPTIONS:
                    out.append((node.lineno, f"{node.name}({arg.arg}={ast.unparse(default)})"))
    return out


def test_the_default_checker_finds_repeats():
    defaults = {"ratio": [0.8], "img_resize": [640], "seed": [0]}
    source = ("def f(conf, img_resize=640, ratio=0.7):\n    return conf.get('ratio', 0.8), conf.get('ratio', 0.9)\n"
              "def bootstrap(x, seed=0):\n    return x\n")
    assert [what for _, what in repeated_defaults(source, defaults)] == ["f(img_resize=640)", ".get('ratio', 0.8)"]


def test_schema_defaults_are_written_only_in_the_schemas():
    """A default changes in one place: no module of src/ repeats an option's schema default, neither as
    ``.get(option, default)`` nor as a parameter default; code parses its options with their model
    (``Model.of(conf)``) or takes the value from its caller."""
    defaults = schema_defaults_by_name()
    offenders = [f"{p.relative_to(REPO)}:{line}: {what}" for p in sorted(PKG.rglob("*.py"))
                 for line, what in repeated_defaults(p.read_text(), defaults)]
    assert offenders == [], "\n".join(offenders)


def result_paths(source: str) -> list[str]:
    """String literals of ``source`` (a rule file or a Python module) that spell a path under results/ (f-strings
    included); docstrings and comments are not code and are left out."""
    found = re.findall(r'(?<![\w.])f?"(results/[^"]*)"', "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith("#")))
    return found


def test_the_results_path_finder_finds_literals_and_f_strings():
    source = 'a = "results/{scene}/sfm"\nb = f"results/models/{run}/w.pt"\n# "results/in/a/comment"\nc = A.SFM\n'
    assert result_paths(source) == ["results/{scene}/sfm", "results/models/{run}/w.pt"]


def test_every_results_path_is_written_once_in_artifacts():
    """Rule files and the glue (matchforge.workflow and each part, <package>/glue.py) name paths under results/ only
    through matchforge.artifacts (issue 33), and every
    artifact there is used by a rule file or the glue (none is listed in docs/artifacts.md without existing)."""
    from matchforge import artifacts

    sources = {p: p.read_text() for p in [*sorted((REPO / "rules").glob("*.smk")), REPO / "Snakefile",
                                          *sorted((PKG / "workflow").glob("*.py")), *sorted(PKG.glob("*/glue.py"))]}
    spelled = {f"{p.relative_to(REPO)}: {path}" for p, text in sources.items() for path in result_paths(text)}
    assert spelled == set()
    everything = "\n".join(sources.values())
    documented_only = {"DEPTH_WORK"}  # written by the depth command inside its folder, named by no rule
    unused = [name for name in artifacts.every() if f"A.{name}" not in everything and name not in documented_only]
    assert unused == []
