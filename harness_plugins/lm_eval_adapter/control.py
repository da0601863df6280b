"""``--model introspect_control``: explainers that know the references, or nothing about the document.

Scored through lm-eval's own requests and the types' own scoring, on exactly the documents
of a run, they give a score its ceiling and its honest floor:

- ``control=oracle``: answers each document's reference (the ceiling; 1.0 on every match
  metric by construction, so a lower value means the scorer, not the explainer, is off);
- ``control=shuffled``: answers another document's reference, the references permuted
  across the run's documents with ``control_seed`` (the answer distribution without any
  information about the document: the floor);
- ``control=constant``: answers one fixed sentence, the reference answer that scores best on
  ``control_metric`` (default: the type's first answer metric) over the run's documents.

Log-likelihood requests (multiple-choice ranking) rank the control's answer first.
Only types that declare ``answer_metrics`` have a single reference answer to serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lm_eval.models  # noqa: F401  fill lm-eval's model table first (see model.py)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from harness_plugins.calibration import best_constant, reference_view
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType
from harness_plugins.lm_eval_adapter import CONTROL_ARGUMENTS, CONTROL_MODEL_NAME
from harness_plugins.lm_eval_adapter.patches import PASSED_BY_LM_EVAL
from harness_plugins.models import register_live_model
from harness_plugins.references import type_name_of
from harness_plugins.registry import get_registry

KINDS = ("oracle", "shuffled", "constant")


def _explanation_for(task_name: str | None) -> ExplanationType:
    explanation = get_registry().explanation_types.get(type_name_of(task_name or ""))
    if explanation is None:
        raise IntrospectError(
            f"{CONTROL_MODEL_NAME}: task {task_name!r} is not an introspect task; the control "
            "explainers answer introspect tasks only"
        )
    if not explanation.answer_metrics:
        raise IntrospectError(
            f"{CONTROL_MODEL_NAME}: {task_name} has no single reference answer to serve "
            "(its type declares no answer_metrics); controls exist for "
            + ", ".join(sorted(f"introspect_{n}" for n, t in _types().items() if t.answer_metrics))
        )
    return explanation


def _types() -> dict[str, ExplanationType]:
    return dict(get_registry().explanation_types)


@register_model(CONTROL_MODEL_NAME)
class ControlLM(LM):
    """An explainer that answers from the references alone (see the module docstring)."""

    def __init__(
        self,
        control: str = "oracle",
        control_seed: int | str = 0,
        control_metric: str | None = None,
        **_: Any,  # batch_size, device, ...: nothing to run
    ) -> None:
        super().__init__()
        if control not in KINDS:
            raise IntrospectError(
                f"{CONTROL_MODEL_NAME}: control={control!r} is not one of {', '.join(KINDS)}"
            )
        try:
            self.seed = int(control_seed)
        except ValueError:
            raise IntrospectError(
                f"{CONTROL_MODEL_NAME}: control_seed={control_seed!r} is not an integer"
            ) from None
        self.kind = control
        self.metric = control_metric or None
        self.chosen: dict[str, str] = {}
        """task -> the constant answer (``control=constant``), for the log and the tests."""
        # its arguments are then known exactly, and vector tasks accept it (it reads none)
        self.argument_names = set(CONTROL_ARGUMENTS | PASSED_BY_LM_EVAL)
        register_live_model(self)

    # ------------------------------------------------------------------ answers

    def _answers(self, requests: Sequence[Any]) -> list[str]:
        """One answer per request: its document's reference, another's, or the constant."""
        by_task: dict[str, dict[int, Any]] = {}
        for request in requests:
            by_task.setdefault(request.task_name, {}).setdefault(request.doc_id, request.doc)
        answer_of: dict[tuple[str, int], str] = {}
        for task, docs in by_task.items():
            explanation = _explanation_for(task)
            ids = sorted(docs)
            targets = [explanation.target(docs[i]) for i in ids]
            if self.kind == "oracle":
                answers = targets
            elif self.kind == "shuffled":
                import numpy as np

                order = np.random.default_rng(self.seed).permutation(len(ids))
                answers = [targets[int(j)] for j in order]
            else:
                metric = self.metric or explanation.answer_metrics[0]
                if metric not in explanation.answer_metrics:
                    raise IntrospectError(
                        f"{CONTROL_MODEL_NAME}: control_metric={metric!r} is not an answer "
                        f"metric of {task} ({', '.join(explanation.answer_metrics)})"
                    )
                views = [reference_view(explanation, docs[i]) for i in ids]
                constant, _ = best_constant(explanation, views, metric)
                self.chosen[task] = constant
                answers = [constant] * len(ids)
            answer_of.update({(task, i): a for i, a in zip(ids, answers, strict=True)})
        return [answer_of[(r.task_name, r.doc_id)] for r in requests]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        return self._answers(requests)

    def loglikelihood(
        self, requests: list[Any], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        """The control's own answer ranks first among the candidates; every other is equal."""
        answers = self._answers(requests)
        out = []
        for request, answer in zip(requests, answers, strict=True):
            mine = request.args[1].strip().lower() == answer.strip().lower()
            out.append((0.0, True) if mine else (-100.0, False))
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        raise IntrospectError(
            f"{CONTROL_MODEL_NAME}: rolling log-likelihood (perplexity tasks) has no control"
        )
