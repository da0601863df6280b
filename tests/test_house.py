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


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Modules imported by ``path`` (at module level only, when asked: lazy imports cannot cycle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks never run
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


def test_ground_truth_knows_nothing_above_it():
    for name, path in _modules().items():
        if not name.startswith("ground_truth"):
            continue
        bad = {
            m
            for m in _imports(path, top_level_only=False)
            if m.split(".")[0] in ("harness_plugins", "lm_eval")
        }
        assert not bad, f"{path} imports {sorted(bad)}"


def test_no_import_cycle():
    modules = _modules()
    graph = {
        name: {
            m
            for m in _imports(path, top_level_only=True)
            if m in modules and m != name and not name.startswith(m + ".")  # parent: implicit
        }
        for name, path in modules.items()
    }
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


def test_no_module_is_over_four_hundred_and_fifty_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 450
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
