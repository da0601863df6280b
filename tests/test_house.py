"""The shape of the house: the rules that keep it readable, checked on the source itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness_plugins", "ground_truth")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


_MODULE_NAMES = set(_modules())


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes inside ``if TYPE_CHECKING:`` blocks: those imports never run."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                found |= {id(sub) for sub in ast.walk(node)}
    return found


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function (a lazy import
    still ties the two modules together); ``TYPE_CHECKING`` imports left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                # `from package import submodule` depends on the submodule, not on the
                # package's own imports (which may be under way: that is no cycle)
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in _MODULE_NAMES else node.module)
    return names


def _own_module(name: str) -> str | None:
    """The project module ``name`` lives in (``a.b.func`` -> ``a.b``), or None."""
    while name and name not in _MODULE_NAMES:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = {_own_module(m) for m in _imports(path)}
        graph[name] = {
            m for m in targets if m and m != name and not name.startswith(m + ".")
        }  # a parent package is imported implicitly
    return graph


# The rooms, from the bottom up: a module may import its own room and the rooms below it.
ROOMS = (
    ("ground_truth", 0),
    ("harness_plugins.banks", 2),
    ("harness_plugins.prompts", 3),
    ("harness_plugins.references", 4),
    ("harness_plugins.builtin", 5),
    ("harness_plugins.training", 6),
    ("harness_plugins.lm_eval_adapter", 7),
    ("harness_plugins.commands", 8),
)
CORE = 1
"""Everything else in harness_plugins: the contract, registry, options, catalog, results."""


def _room(module: str) -> int:
    for prefix, rank in ROOMS:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return CORE


def test_ground_truth_knows_nothing_above_it():
    for name, path in _modules().items():
        if not name.startswith("ground_truth"):
            continue
        bad = {m for m in _imports(path) if m.split(".")[0] in ("harness_plugins", "lm_eval")}
        assert not bad, f"{path} imports {sorted(bad)}"


def test_the_core_needs_no_lm_eval():
    """The contract, options, registry and results import without lm-eval: only the
    adapter (and the rooms that run lm-eval) may import it."""
    for name, path in _modules().items():
        if name.startswith("harness_plugins") and _room(name) == CORE:
            bad = {m for m in _imports(path) if m.split(".")[0] == "lm_eval"}
            assert not bad, f"{path} imports {sorted(bad)}"


def test_no_import_cycle_counting_imports_inside_functions():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_arrow_runs_back_up_between_rooms():
    up = sorted(
        f"{name} -> {target}"
        for name, targets in _graph().items()
        for target in targets
        if _room(target) > _room(name)
    )
    assert not up, "imports from a lower room into a higher one: " + "; ".join(up)


def test_the_house_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import harness_plugins.commands.cli\n"
        "def f():\n    from harness_plugins.results import RunResults\n"
    )
    assert _imports(module) == {"typing", "harness_plugins.results"}


def test_the_lm_eval_task_class_stays_thin():
    path = ROOT / "harness_plugins" / "lm_eval_adapter" / "task.py"
    (task,) = [
        node
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.ClassDef) and node.name == "IntrospectTask"
    ]
    assert task.end_lineno - task.lineno + 1 <= 155


def test_no_module_is_over_four_hundred_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, f"split these by concept: {long}"


def test_sites_are_named_by_one_function():
    for name, path in _modules().items():
        if name == "ground_truth.sites":
            continue
        text = path.read_text(encoding="utf-8")
        assert 'f"blocks.{' not in text, f"{path}: name sites with ground_truth.sites.site()"


def test_importing_the_package_installs_no_excepthook():
    code = (
        "import sys; before = sys.excepthook; "
        "import harness_plugins.registry, harness_plugins.errors, harness_plugins.references, "
        "harness_plugins.lm_eval_adapter.task; "
        "harness_plugins.registry.get_registry(); print(sys.excepthook is before)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True", done.stderr


def test_product_code_never_points_at_an_internal_research_file():
    for path in [*_modules().values(), *(ROOT / "tasks").glob("*.yaml")]:
        assert "research.md" not in path.read_text(encoding="utf-8"), path


def test_test_file_names_are_unique() -> None:
    """pytest imports test modules by basename (rootdir mode): two ``test_x.py`` in two
    folders stop the whole collection."""
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
