"""What the lm-eval import hook adds: the introspect tasks, the group, and the model name.

Run by `harness_plugins.lm_eval_adapter.hook` right after lm-eval defines its task index and
model registry, and by hand through ``introspect tasks --path`` for ``--include_path``.
Every function here is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness_plugins.lm_eval_adapter import CONTROL_MODEL_NAME, DATASET_PATH, GROUP, MODEL_NAME

MODEL_TARGET = "harness_plugins.lm_eval_adapter.model:IntrospectLM"
CONTROL_MODEL_TARGET = "harness_plugins.lm_eval_adapter.control:ControlLM"


def patch_console_table() -> None:
    """Per-layer metrics out of lm-eval's printed table (see `console`)."""
    from harness_plugins.lm_eval_adapter.console import patch_console_table as patch

    patch()


def task_config_dir() -> Path:
    """The folder of introspect task YAMLs: inside the wheel, or the repository's tasks/."""
    package = Path(__file__).resolve().parents[1]  # harness_plugins/
    for candidate in (package / "tasks", package.parent / "tasks"):
        if (candidate / f"{GROUP}.yaml").is_file():
            return candidate
    raise FileNotFoundError("introspect task folder not found; reinstall lm-eval-introspect")


def register_model() -> None:
    """Register ``--model introspect`` lazily, after lm-eval's own models."""
    import lm_eval.models  # noqa: F401  (registering first would hide `--model hf`: lm-eval imports its models lazily only when its registry is empty)
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)
    if CONTROL_MODEL_NAME not in model_registry:
        model_registry.register(CONTROL_MODEL_NAME, target=CONTROL_MODEL_TARGET)


def patch_stderr() -> None:
    """Let lm-eval use the standard error a `Metric` declares (``Metric.stderr``).

    lm-eval knows closed forms for mean and bootstraps a fixed list of functions 100,000
    times; corpus-level introspect metrics (``changed_f1``) bring a vectorised bootstrap.
    """
    from lm_eval import evaluator_utils

    from harness_plugins.explanation import declared_stderr

    original = evaluator_utils.stderr_for_metric
    if getattr(original, "_introspect", False):
        return

    def stderr_for_metric(metric: Any, bootstrap_iters: int) -> Any:
        own = declared_stderr(metric)
        if own is not None and bootstrap_iters > 0:
            return own
        return original(metric, bootstrap_iters)

    stderr_for_metric._introspect = True  # type: ignore[attr-defined]
    evaluator_utils.stderr_for_metric = stderr_for_metric


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


# The model and model arguments of the `lm_eval` command line being run, seen before
# lm-eval loads the model (see `patch_evaluator_config`): with them, options are
# validated exactly before any weights load.
_command_line_model: dict[str, Any] = {}


def known_model_arguments() -> set[str] | None:
    """The argument names the evaluated model will take, when it is the introspect model."""
    from harness_plugins.lm_eval_adapter.model import live_model_arguments

    passed = {"batch_size", "max_batch_size", "device"}
    if _command_line_model.get("model") == CONTROL_MODEL_NAME or control_is_live():
        return _control_arguments() | passed | set(_command_line_model.get("model_args") or ())
    live = live_model_arguments()
    if live is not None:
        return live
    if _command_line_model.get("model") == MODEL_NAME:
        # what lm-eval passes besides the model_args (create_from_arg_string)
        return {"pretrained", "peft", "batch_size", "max_batch_size", "device"} | set(
            _command_line_model.get("model_args") or ()
        )
    return None


def control_is_live() -> bool:
    import sys

    control = sys.modules.get("harness_plugins.lm_eval_adapter.control")
    return control is not None and control.live_control()


def _control_arguments() -> set[str]:
    from harness_plugins.lm_eval_adapter.control import ARGUMENTS

    return set(ARGUMENTS)


def validate_before_loading(
    index: dict[str, Any], names: Sequence[str], metadata: dict[str, Any] | None
) -> None:
    """Build the reference pipeline of each selected introspect task before lm-eval loads any
    model: every option, model name and tokenizer check runs now (and cheaply)."""
    from harness_plugins.references import ReferencePipeline

    known = known_model_arguments()
    for task, type_name in introspect_task_types(index, names).items():
        ReferencePipeline(type_name, metadata or {}, task=task, known_model_arguments=known)


def patch_evaluator_config() -> None:
    """Remember the ``--model`` and ``--model_args`` of the command line before tasks match."""
    from lm_eval.config import evaluate_config

    process = evaluate_config.EvaluatorConfig.process_tasks
    if getattr(process, "_introspect", False):
        return

    def process_tasks(self: Any, *args: Any, **kwargs: Any) -> Any:
        model_args = self.model_args if isinstance(self.model_args, dict) else {}
        _command_line_model.update(model=self.model, model_args=set(model_args))
        return process(self, *args, **kwargs)

    process_tasks._introspect = True  # type: ignore[attr-defined]
    evaluate_config.EvaluatorConfig.process_tasks = process_tasks


def patch_task_manager() -> None:
    """Teach lm-eval's task index about introspect tasks; check their options early."""
    from lm_eval.tasks import _index, manager

    from harness_plugins.errors import install_one_line_errors

    install_one_line_errors()

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
