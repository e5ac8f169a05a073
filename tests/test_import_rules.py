"""How the modules of src/relunet may import each other and the heavy libraries, read from their source.

Every import counts, at module level or inside a function, except where a rule says otherwise.
"""

import ast
import itertools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "relunet"
#: slow to import (seconds): loaded only once a command's input has been checked
HEAVY = ("torch", "monai", "onnxruntime", "onnx", "onnxscript")
#: loaded only where they run: `--engine onnxruntime` and `relunet export`
ON_USE = ("onnxruntime", "onnx", "onnxscript")
#: the modules a command calls to check its input before it imports its workflow
CHECKERS = (
    "relunet.cli",
    "relunet.config",
    "relunet.data.layouts",
    "relunet.data.preprocess",
    "relunet.rundir",
    "relunet.reporting.page",
    "relunet.inference.sharding",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, bool]]:
    """(imported module, at module level) for each import in the module `name`.

    `from relunet.x import y` names the module `relunet.x.y` where there is one, else `relunet.x`.
    Imports under `if TYPE_CHECKING:` are not at module level: they never run.
    """
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, top) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import"
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((full if full in MODULES else node.module, top))
        for child in ast.iter_child_nodes(node):
            typing_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or typing_only
            visit(child, top and not inner)

    visit(ast.parse(MODULES[name].read_text()), True)
    return found


IMPORTS = {name: imports(name) for name in MODULES}


def own(target: str) -> str | None:
    """The module of src/relunet that `target` names (the longest known prefix), or None."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a longer loop (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(group) > 1 or node in edges.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in order:
            visit(node)
    return groups


def one_letter_apart(a: str, b: str) -> bool:
    """Whether `b` is `a` with one letter added, dropped or replaced (edit distance 1)."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_no_modules_import_each_other():
    """A package's __init__ re-exporting its modules is not a loop: they never import the package."""
    edges = {
        name: {own(t) for t, _ in found if own(t) not in (None, name)} for name, found in IMPORTS.items()
    }
    assert cycles(edges) == []


def test_the_loop_finder_finds_loops_of_any_length():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_two_module_names_differ_by_one_letter():
    stems = sorted({path.stem for path in MODULES.values()} | {path.parent.name for path in MODULES.values()})
    close = [(a, b) for a, b in itertools.combinations(stems, 2) if one_letter_apart(a, b)]
    assert close == []
    assert one_letter_apart("backbone", "backbones") and one_letter_apart("decision", "decisions")
    assert not one_letter_apart("rundir", "runs")


@pytest.mark.parametrize("checker", CHECKERS)
def test_input_checks_load_no_heavy_library(checker):
    """What a checker imports at module level, and all that imports in turn, imports no heavy library."""
    seen, todo, heavy = set(), [checker], []
    while todo:
        name = todo.pop()
        seen.add(name)
        for target, top in IMPORTS[name]:
            if top and target.split(".")[0] in HEAVY:
                heavy.append(f"{name} imports {target}")
            elif top and own(target) and own(target) not in seen:
                todo.append(own(target))
    assert heavy == []


def test_onnx_runtime_is_imported_only_where_it_runs():
    at_top = [
        f"{name} imports {target}"
        for name, found in IMPORTS.items()
        for target, top in found
        if top and target.split(".")[0] in ON_USE
    ]
    assert at_top == []
