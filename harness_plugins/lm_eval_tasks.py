"""What the lm-eval import hook adds: the introspect tasks, the group, and the model name.

Run by `harness_plugins.lm_eval_hook` right after lm-eval defines its task index and
model registry, and by hand through ``introspect tasks --path`` for ``--include_path``.
Every function here is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

GROUP = "introspect"
DATASET_PATH = "introspect"
MODEL_TARGET = "harness_plugins.lm_eval_model:IntrospectLM"


def task_config_dir() -> Path:
    """The folder of introspect task YAMLs: inside the wheel, or the repository's tasks/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "tasks", here.parent / "tasks"):
        if (candidate / f"{GROUP}.yaml").is_file():
            return candidate
    raise FileNotFoundError("introspect task folder not found; reinstall lm-eval-introspect")


def register_model() -> None:
    """Register ``--model introspect`` lazily, after lm-eval's own models."""
    import lm_eval.models  # noqa: F401  (see harness_plugins/lm_eval_model.py for why)
    from lm_eval.api.registry import model_registry

    if "introspect" not in model_registry:
        model_registry.register("introspect", target=MODEL_TARGET)


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

    from harness_plugins.plugins import get_registry
    from harness_plugins.task import IntrospectTask, task_name_for

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
    """Check the options of the selected introspect tasks before lm-eval loads any model."""
    from harness_plugins.plugins import get_registry
    from harness_plugins.task import check_model_names, model_specs, resolve_task_options

    registry = get_registry()
    for task, type_name in introspect_task_types(index, names).items():
        explanation = registry.explanation_type(type_name)
        options = resolve_task_options(task, explanation, metadata or {})
        registry.backend(options["backend"])
        check_model_names(model_specs(task, metadata or {}, options), registry.model_aliases)


def patch_task_manager() -> None:
    """Teach lm-eval's task index about introspect tasks; check their options early."""
    from lm_eval.tasks import _index, manager

    build = _index.TaskIndex.build
    if not getattr(build, "_introspect", False):

        def build_with_introspect(
            paths: Iterable[Any], *args: Any, **kwargs: Any
        ) -> dict[str, Any]:
            index = build(with_task_folder(paths), *args, **kwargs)
            add_plugin_entries(index)
            return index

        build_with_introspect._introspect = True  # type: ignore[attr-defined]
        _index.TaskIndex.build = staticmethod(build_with_introspect)

    match = manager.TaskManager.match_tasks
    if not getattr(match, "_introspect", False):

        def match_tasks(self: Any, task_list: list[str]) -> list[str]:
            matched = match(self, task_list)
            validate_before_loading(self.task_index, matched, self.metadata)
            return matched

        match_tasks._introspect = True  # type: ignore[attr-defined]
        manager.TaskManager.match_tasks = match_tasks
