"""The lm-eval task behind every ``introspect_<type>``: a thin adapter over the reference pipeline.

lm-eval builds it from a YAML (``class: !function harness_plugins.lm_eval_adapter.task.IntrospectTask``,
``dataset_name: <type>``) or from the index entries `harness_plugins.lm_eval_adapter.index`
adds for plugin types. Options arrive in the task metadata (``--metadata`` merged with
``--model_args``). The `ReferencePipeline` that validated them before the model loaded
(`validation`) builds the references, lazily, for exactly the documents lm-eval will
evaluate (``--limit``); this class turns documents into lm-eval requests and scores
(`scoring` holds the explainer-side services), and writes the run's record into the results.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Mapping, MutableMapping
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import Task, TaskConfig
from lm_eval.filters import build_filter_ensemble

from harness_plugins.calibration import calibration_metrics, calibration_values
from harness_plugins.errors import IntrospectError, install_one_line_errors
from harness_plugins.lm_eval_adapter import DATASET_PATH
from harness_plugins.lm_eval_adapter.patches import (
    lm_eval_aggregation,
    patch_console_table,
    patch_stderr,
    register_model,
)
from harness_plugins.lm_eval_adapter.scoring import ExplainerServices
from harness_plugins.lm_eval_adapter.validation import pipeline_for
from harness_plugins.models import model_arguments
from harness_plugins.prompts import chat
from harness_plugins.prompts.vectors import VectorTable
from harness_plugins.references import TASK_PREFIX, task_name_for

logger = logging.getLogger("introspect")

__all__ = ["DATASET_PATH", "TASK_PREFIX", "IntrospectTask", "task_name_for"]

# Also when the tasks come in through --include_path with the hook off: lm-eval reads
# the task YAMLs (and so imports this module) before it looks up ``--model introspect``.
patch_stderr()
patch_console_table()
register_model()


class IntrospectTask(Task):
    """An lm-eval task whose documents, prompts and scores come from an explanation type."""

    VERSION = None

    def __init__(self, config: Mapping[str, Any] | None = None, **_: Any) -> None:
        install_one_line_errors()
        config = dict(config or {})
        type_name = config.get("dataset_name") or str(config.get("task", "")).removeprefix(
            TASK_PREFIX
        )
        name = config.get("task") or task_name_for(type_name)
        self.pipeline = pipeline_for(name, type_name, dict(config.get("metadata") or {}))
        self.services = ExplainerServices(self.pipeline)
        self.explanation, self.options = self.pipeline.explanation, self.pipeline.options
        self.mode, self.subject_spec = self.pipeline.mode, self.pipeline.subject_spec
        self.explainer_spec = self.pipeline.explainer_spec
        # Task.__init__ would build a TaskConfig from nothing (and warn about it): set its
        # fields here instead.
        self._training_docs = self._fewshot_docs = self._instances = self.fewshot_rnd = None
        self._filters = [answer_filter(self.explanation.repeats(self.options))]
        self.VERSION, self.OUTPUT_TYPE = self.explanation.version, self.explanation.output_type
        self._config = task_config(name, type_name, config, self.explanation, self.options)
        self._vectors: VectorTable | None = None
        self._shots, self._fewshot = None, {}  # few-shot examples and what the record says of them
        self._publish_record()

    def _publish_record(self) -> None:
        """The run's record, where lm-eval writes it: ``configs.<task>.metadata.introspect``."""
        record = dataclasses.replace(
            self.pipeline.record, cross_model_maps=self.services.map_fits(), **self._fewshot
        )
        self._config.metadata["introspect"] = record.as_dict()

    def download(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to download: documents are generated, references built on demand."""

    def has_training_docs(self) -> bool:
        return False

    def has_validation_docs(self) -> bool:
        return False

    def has_test_docs(self) -> bool:
        return True

    def _all_questions(self) -> Any:
        return self.pipeline.questions()

    def _subject_model(self) -> Any:
        return self.pipeline.subject_model()

    def test_docs(self) -> Any:
        return self.pipeline.docs if self.pipeline.docs is not None else self._all_questions()

    def build_all_requests(
        self, *, limit: int | None = None, samples: list[int] | None = None, **kwargs: Any
    ) -> None:
        require_introspect_model(self.config.task, self.explanation)
        self.ensure_references(
            documents_needed(self.config.task, self._all_questions(), limit, samples)
        )
        if kwargs.get("cache_requests"):
            # lm-eval keys its request cache by task name only: prompts built for another
            # subject or other options would come back. Ours are cheap to rebuild.
            logger.warning("introspect: %s: lm-eval's request cache is not used", self.config.task)
            kwargs["cache_requests"] = False
        super().build_all_requests(limit=limit, samples=samples, **kwargs)
        self._publish_record()

    def ensure_references(self, needed: int) -> Any:
        """Reference rows for the first ``needed`` documents (see `ReferencePipeline.ensure`)."""
        docs = self.pipeline.ensure(needed)
        self._publish_record()
        return docs

    def _vector_table(self) -> VectorTable:
        """The vectors of this evaluation: filled while prompts render, cleared once scored."""
        if self._vectors is None:
            self._vectors = VectorTable(self.services.vector_mapper())
        return self._vectors

    def doc_to_text(self, doc: Mapping[str, Any]) -> str:
        with self._vector_table().active():
            return chat.plain_transcript(self.explanation.explainer_messages(doc, self.options))

    def doc_to_target(self, doc: Mapping[str, Any]) -> str:
        return self.explanation.target(doc)

    def fewshot_context(
        self,
        doc: Mapping[str, Any],
        num_fewshot: int = 0,
        system_instruction: str | None = None,
        apply_chat_template: bool = False,
        chat_template: Any = None,
        **_: Any,
    ) -> str:
        """The explainer prompt: its own chat template, unless lm-eval is asked to apply one.

        With ``--num_fewshot K`` the conversation opens with K solved examples from the
        *train* partition (never test), each the type's question and its reference answer.
        """
        with self._vector_table().active():
            messages = [
                *self._fewshot_messages(doc, num_fewshot),
                *self.explanation.explainer_messages(doc, self.options),
            ]
        if not self.explanation.uses_chat:
            return messages[-1]["content"]
        if system_instruction:
            messages = [{"role": "system", "content": system_instruction}, *messages]
        if apply_chat_template and chat_template is not None:
            return chat_template(messages)
        return render_prompt(
            self.config.task, self.services.explainer_tokenizer, messages, self.options
        )

    def _fewshot_messages(self, doc: Mapping[str, Any], k: int) -> list[dict[str, str]]:
        """K solved train-partition examples, built by the task's own pipeline."""
        check_num_fewshot(self.config.task, k)
        if k and self._shots is None:
            self._shots, key = fewshot_pool(self.config.task, self.pipeline, k)
            self._fewshot = {"num_fewshot": k, "fewshot_reference_key": key}
            self._publish_record()
        return fewshot_messages(self.config.task, self.pipeline, self._shots, doc, k) if k else []

    def construct_requests(self, doc: Mapping[str, Any], ctx: str, **kwargs: Any) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        with self._vector_table().active():  # requests may register vectors too
            requests = self.explanation.requests(doc, ctx, self.config.generation_kwargs)
        return [
            Instance(request_type=kind, doc=doc, arguments=arguments, idx=index, **kwargs)
            for index, (kind, arguments) in enumerate(requests)
        ]

    def process_results(self, doc: Mapping[str, Any], results: list[Any]) -> dict[str, Any]:
        # lm-eval scores only after the model has answered every request: the vectors
        # the prompts named are no longer needed.
        if self._vectors is not None:
            self._vectors.clear()
        scores = self.explanation.score_results(doc, results, self.services.scoring_context)
        if isinstance(doc, MutableMapping):  # records a metric cannot hold, for --log_samples
            doc.update({f"introspect_{k}": v for k, v in getattr(scores, "records", {}).items()})
        return {**scores, **calibration_values(self.explanation, doc, results, self._metrics())}

    def _metrics(self) -> Mapping[str, Any]:
        return run_metrics(self.explanation, self.pipeline.docs)

    def aggregation(self) -> dict[str, Any]:
        return {name: lm_eval_aggregation(m.aggregate) for name, m in self._metrics().items()}

    def higher_is_better(self) -> dict[str, bool]:
        return {name: metric.higher_is_better for name, metric in self._metrics().items()}


def task_config(
    name: str, type_name: str, config: Mapping[str, Any], explanation: Any, options: Any
) -> TaskConfig:
    """lm-eval's config of one introspect task, from its explanation type and options."""
    return TaskConfig(
        task=name,
        tag=config.get("tag"),
        dataset_path=DATASET_PATH,
        dataset_name=type_name,
        test_split=options["partition"],
        description=explanation.description,
        output_type=explanation.output_type,
        generation_kwargs={
            "until": list(explanation.stop_sequences),
            "max_gen_toks": explanation.max_gen_tokens,
            **explanation.generation_kwargs(options),
        },
        repeats=explanation.repeats(options),
        metric_list=[
            {"metric": metric, "higher_is_better": spec.higher_is_better}
            for metric, spec in explanation.metrics.items()
        ],
        num_fewshot=None,  # lm-eval's --num_fewshot applies (0 when not given)
        metadata={**(config.get("metadata") or {}), "version": explanation.version},
    )


def documents_needed(task: str, questions: Any, limit: Any, samples: list[int] | None) -> int:
    """How many documents lm-eval will evaluate, from ``--limit`` or ``--samples``."""
    needed = len(questions)
    if samples:
        return max(samples) + 1
    if limit is not None:
        if int(limit) < 1:
            raise IntrospectError(
                f"{task}: --limit {limit} leaves no documents to evaluate; give a positive "
                "count (or a fraction between 0 and 1 that keeps at least one)"
            )
        needed = min(needed, int(limit))
    return needed


def render_prompt(
    task: str, tokenizer: Any, messages: list[dict[str, str]], options: Mapping[str, Any]
) -> str:
    """The conversation in the explainer's chat format (a plain transcript without a model)."""
    if tokenizer is None:
        if options["chat_format"] == "template":
            raise IntrospectError(
                f"{task}: chat_format=template needs a model named by pretrained="
            )
        return chat.plain_transcript(messages)
    text, _ = chat.render(tokenizer, messages, options["chat_format"])
    return text


def check_num_fewshot(task: str, k: Any) -> None:
    """A few-shot count is a whole number of examples, 0 or more."""
    if k is not None and (not isinstance(k, int) or k < 0):
        raise IntrospectError(
            f"{task}: --num_fewshot {k} is not a number of examples; give 0 or more"
        )


def run_metrics(explanation: Any, docs: Any) -> dict[str, Any]:
    """A run's metrics: the type's own (per layer or cell when its documents say so) and
    their calibration (`harness_plugins.calibration`)."""
    own = explanation.metrics_for(docs) if docs is not None else explanation.metrics
    return {**own, **calibration_metrics(explanation, own)}


def require_introspect_model(task: str, explanation: Any) -> None:
    """Vector prompts mean nothing to lm-eval's plain HF model: stop before any work."""
    if explanation.needs_vectors and not model_arguments().live:
        raise IntrospectError(
            f"{task} injects subject vectors into the explainer, which only the introspect "
            "model can do: run lm_eval --model introspect --model_args pretrained=..."
        )


def answer_filter(repeats: int) -> Any:
    """Several answers per document go to the type together; one answer as a string."""
    return build_filter_ensemble("none", [] if repeats > 1 else [["take_first", None]])


def fewshot_pool(task: str, pipeline: Any, k: int) -> tuple[Any, str | None]:
    """(solved train-partition documents to draw K examples from, their store key)."""
    if not pipeline.explanation.uses_chat:
        raise IntrospectError(
            f"{task}: --num_fewshot needs a question-and-answer type; this one "
            "patches hidden states into a fixed prompt: run it with --num_fewshot 0"
        )
    pool = min(len(pipeline.questions("train")), max(4 * k, 16))
    return pipeline.ensure(pool, partition="train"), pipeline.reference_key("train")


def fewshot_messages(
    task: str, pipeline: Any, shots: Any, doc: Any, k: int
) -> list[dict[str, str]]:
    """K of ``shots`` as alternating user/assistant turns, the same K for the same document."""
    explanation, options = pipeline.explanation, pipeline.options
    if len(shots) < k:
        raise IntrospectError(
            f"{task}: --num_fewshot {k} but the train partition has only {len(shots)} examples"
        )
    rng = random.Random(f"{options['seed']}:{doc['question_id']}")
    messages: list[dict[str, str]] = []
    for index in rng.sample(range(len(shots)), k):
        shot = shots[index]
        turns = explanation.explainer_messages(shot, options)
        if messages:  # one system message, at the top
            turns = [m for m in turns if m["role"] != "system"]
        messages += [*turns, {"role": "assistant", "content": explanation.target(shot)}]
    return messages
