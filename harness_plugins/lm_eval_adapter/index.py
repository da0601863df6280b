"""What the lm-eval task index gains: the introspect task folder, tasks for plugin types, the group.

`install_task_index` runs (through `harness_plugins.lm_eval_adapter.hook`) right after
lm-eval defines its task manager; ``introspect tasks --path`` gives the folder for
``--include_path`` by hand. The lm-eval changes themselves are in
`harness_plugins.lm_eval_adapter.patches`. Every function here is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness_plugins.lm_eval_adapter import DATASET_PATH, GROUP
from harness_plugins.lm_eval_adapter.patches import patch_task_manager

__all__ = [
    "GROUP",
    "add_plugin_entries",
    "install_task_index",
    "introspect_task_types",
    "task_config_dir",
    "validate_before_loading",
    "with_task_folder",
]


def task_config_dir() -> Path:
    """The folder of introspect task YAMLs: inside the wheel, or the repository's tasks/."""
    package = Path(__file__).resolve().parents[1]  # harness_plugins/
    for candidate in (package / "tasks", package.parent / "tasks"):
        if (candidate / f"{GROUP}.yaml").is_file():
            return candidate
    raise FileNotFoundError("introspect task folder not found; reinstall lm-eval-introspect")


def _is_defaults(path: Any) -> bool:
    import lm_eval.tasks

    return Path(path).resolve() == Path(lm_eval.tasks.__file__).resolve().parent


def with_task_folder(paths: Iterable[Any]) -> list[Any]:
    """Index paths with ours right after lm-eval's defaults, so user paths still override it."""
    paths = list(paths)
    ours = task_config_dir()
    if any(Path(p).resolve() == ours for p in paths):
        return paths
    position = 1 if paths and _is_defaults(paths[0]) else 0
    return [*paths[:position], ours, *paths[position:]]


def add_plugin_entries(index: dict[str, Any]) -> None:
    """Add ``introspect_<name>`` for registered types without a YAML, and the full group."""
    from lm_eval.tasks._index import Entry, Kind

    from harness_plugins.lm_eval_adapter.task import IntrospectTask
    from harness_plugins.references import task_name_for
    from harness_plugins.registry import get_registry

    names = []
    for type_name, explanation in sorted(get_registry().explanation_types.items()):
        name = task_name_for(type_name)
        names.append(name)
        if name not in index:
            index[name] = Entry(
                name=name,
                kind=Kind.PY_TASK,
                yaml_path=None,
                cfg={
                    "task": name,
                    "class": IntrospectTask,
                    "dataset_path": DATASET_PATH,
                    "dataset_name": type_name,
                    "output_type": explanation.output_type,
                },
            )
    index[GROUP] = Entry(
        name=GROUP, kind=Kind.GROUP, yaml_path=None, cfg={"group": GROUP, "task": names}
    )


def introspect_task_types(index: dict[str, Any], names: Sequence[str]) -> dict[str, str]:
    """task name -> explanation type, for the introspect tasks among ``names`` (groups expanded)."""
    found: dict[str, str] = {}
    for name in names:
        entry = index.get(name)
        cfg = getattr(entry, "cfg", None) or {}
        if name == GROUP:
            found.update(introspect_task_types(index, cfg.get("task", [])))
        elif cfg.get("dataset_path") == DATASET_PATH and cfg.get("dataset_name"):
            found[name] = cfg["dataset_name"]
    return found


def validate_before_loading(
    index: dict[str, Any], names: Sequence[str], metadata: dict[str, Any] | None
) -> None:
    """Build the reference pipeline of each selected introspect task before lm-eval loads any
    model: every option, model name and tokenizer check runs now (and cheaply); the task
    reuses that pipeline."""
    from harness_plugins.lm_eval_adapter.validation import validate

    validate(introspect_task_types(index, names), metadata)


def install_task_index() -> None:
    """Teach lm-eval's task index about introspect tasks; check their options early."""
    patch_task_manager(with_task_folder, add_plugin_entries, validate_before_loading)
