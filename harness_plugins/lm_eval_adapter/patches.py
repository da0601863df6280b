"""What introspect changes in lm-eval, each change idempotent and applied right after lm-eval
defines the module it changes (see `harness_plugins.lm_eval_adapter.hook`).

Registering the ``introspect`` model, a metric's own standard error, per-layer rows out of
the printed table, the command line's model remembered before tasks match, and the task
index taught about introspect tasks (what to add comes from
`harness_plugins.lm_eval_adapter.index`, which calls `patch_task_manager`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from harness_plugins.lm_eval_adapter import CONTROL_ARGUMENTS, CONTROL_MODEL_NAME, MODEL_NAME

MODEL_TARGET = "harness_plugins.lm_eval_adapter.model:IntrospectLM"
CONTROL_MODEL_TARGET = "harness_plugins.lm_eval_adapter.control:ControlLM"
PASSED_BY_LM_EVAL = frozenset({"batch_size", "max_batch_size", "device"})
"""What lm-eval passes every model besides its model_args (``create_from_arg_string``)."""


def register_model() -> None:
    """Register ``--model introspect`` and ``--model introspect_control`` lazily, after
    lm-eval's own models."""
    import lm_eval.models  # noqa: F401  (registering first would hide `--model hf`: lm-eval imports its models lazily only when its registry is empty)
    from lm_eval.api.registry import model_registry

    from harness_plugins.models import register_model_arguments

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)
    if CONTROL_MODEL_NAME not in model_registry:
        model_registry.register(CONTROL_MODEL_NAME, target=CONTROL_MODEL_TARGET)
    register_model_arguments(CONTROL_MODEL_NAME, CONTROL_ARGUMENTS | PASSED_BY_LM_EVAL)


def patch_console_table() -> None:
    """Per-layer metrics out of lm-eval's printed table (see `console`)."""
    from harness_plugins.lm_eval_adapter.console import patch_console_table as patch

    patch()


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


def lm_eval_aggregation(aggregate: Callable[[list[Any]], float]) -> Callable[[list[Any]], float]:
    """What lm-eval gets for a `Metric`'s aggregate: for the project's `mean`, lm-eval's own
    registered ``mean`` (lm-eval knows its standard error by that function); others as is."""
    from lm_eval.api.registry import get_aggregation

    from harness_plugins.explanation import mean

    return get_aggregation("mean") if aggregate is mean else aggregate


def patch_evaluator_config() -> None:
    """Tell the model catalog the ``--model`` and ``--model_args`` of the command line
    before tasks match: with them, options are validated exactly before any weights load."""
    from lm_eval.config import evaluate_config

    from harness_plugins.models import note_command_line_model

    process = evaluate_config.EvaluatorConfig.process_tasks
    if getattr(process, "_introspect", False):
        return

    def process_tasks(self: Any, *args: Any, **kwargs: Any) -> Any:
        model_args = self.model_args if isinstance(self.model_args, dict) else {}
        note_command_line_model(self.model, model_args)
        return process(self, *args, **kwargs)

    process_tasks._introspect = True  # type: ignore[attr-defined]
    evaluate_config.EvaluatorConfig.process_tasks = process_tasks


def patch_task_manager(
    index_paths: Callable[[Iterable[Any]], list[Any]],
    add_entries: Callable[[dict[str, Any]], None],
    after_match: Callable[[dict[str, Any], Sequence[str], dict[str, Any] | None], None],
) -> None:
    """Wrap lm-eval's task index build (``index_paths`` rewrites its folders, ``add_entries``
    adds to the result) and task matching (``after_match`` sees the index, the matched
    names and the run's metadata)."""
    from lm_eval.tasks import _index, manager

    from harness_plugins.errors import install_one_line_errors

    install_one_line_errors()

    build = _index.TaskIndex.build
    if not getattr(build, "_introspect", False):

        def build_with_introspect(
            paths: Iterable[Any], *args: Any, **kwargs: Any
        ) -> dict[str, Any]:
            index = build(index_paths(paths), *args, **kwargs)
            add_entries(index)
            return index

        build_with_introspect._introspect = True  # type: ignore[attr-defined]
        _index.TaskIndex.build = staticmethod(build_with_introspect)

    match = manager.TaskManager.match_tasks
    if not getattr(match, "_introspect", False):

        def match_tasks(self: Any, task_list: list[str]) -> list[str]:
            matched = match(self, task_list)
            after_match(self.task_index, matched, self.metadata)
            return matched

        match_tasks._introspect = True  # type: ignore[attr-defined]
        manager.TaskManager.match_tasks = match_tasks
