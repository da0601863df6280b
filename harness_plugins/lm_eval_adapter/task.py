"""The lm-eval task behind every ``introspect_<type>``: a thin adapter over the reference pipeline.

lm-eval builds it from a YAML (``class: !function harness_plugins.lm_eval_adapter.task.IntrospectTask``,
``dataset_name: <type>``) or from the index entries `harness_plugins.lm_eval_adapter.index`
adds for plugin types. Options arrive in the task metadata (``--metadata`` merged with
``--model_args``). The `ReferencePipeline` validates them and builds the references,
lazily, for exactly the documents lm-eval will evaluate (``--limit``); this class turns
documents into lm-eval requests and scores, and writes the pipeline's record into the
results.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Mapping
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import Task, TaskConfig
from lm_eval.filters import build_filter_ensemble

from harness_plugins.calibration import calibration_metrics, calibration_values
from harness_plugins.errors import IntrospectError, install_one_line_errors
from harness_plugins.explanation import ScoringContext
from harness_plugins.lm_eval_adapter import DATASET_PATH
from harness_plugins.lm_eval_adapter.index import (
    control_is_live,
    known_model_arguments,
    patch_console_table,
    patch_stderr,
    register_model,
)
from harness_plugins.prompts import chat
from harness_plugins.prompts.vectors import VectorTable
from harness_plugins.references import TASK_PREFIX, ReferencePipeline, task_name_for

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
        config.pop("class", None)
        type_name = config.get("dataset_name") or str(config.get("task", "")).removeprefix(
            TASK_PREFIX
        )
        name = config.get("task") or task_name_for(type_name)
        metadata = dict(config.get("metadata") or {})
        self._known_model_arguments = known_model_arguments()
        self.pipeline = ReferencePipeline(
            type_name, metadata, task=name, known_model_arguments=self._known_model_arguments
        )
        self.explanation = self.pipeline.explanation
        self.options = self.pipeline.options
        self.mode = self.pipeline.mode
        self.subject_spec = self.pipeline.subject_spec
        self.explainer_spec = self.pipeline.explainer_spec

        # Task.__init__ would build a TaskConfig from nothing (and warn about it): set its
        # fields here instead.
        self._training_docs = None
        self._fewshot_docs = None
        self._instances = None
        repeats = self.explanation.repeats(self.options)
        # several answers per document go to the type together; one answer as a string
        self._filters = [
            build_filter_ensemble("none", [] if repeats > 1 else [["take_first", None]])
        ]
        self.fewshot_rnd = None
        self.VERSION = self.explanation.version
        self.OUTPUT_TYPE = self.explanation.output_type
        self._config = TaskConfig(
            task=name,
            tag=config.get("tag"),
            dataset_path=DATASET_PATH,
            dataset_name=type_name,
            test_split=self.options["partition"],
            description=self.explanation.description,
            output_type=self.explanation.output_type,
            generation_kwargs={
                "until": list(self.explanation.stop_sequences),
                "max_gen_toks": self.explanation.max_gen_tokens,
                **self.explanation.generation_kwargs(self.options),
            },
            repeats=repeats,
            metric_list=[
                {"metric": metric, "higher_is_better": spec.higher_is_better}
                for metric, spec in self.explanation.metrics.items()
            ],
            num_fewshot=None,  # lm-eval's --num_fewshot applies (0 when not given)
            metadata={**metadata, "version": self.explanation.version},
        )
        self._vectors: VectorTable | None = None
        self._shots: Any = None
        self._publish_record()

    def _publish_record(self) -> None:
        """The pipeline's record, where lm-eval writes it: ``configs.<task>.metadata.introspect``."""
        self._config.metadata["introspect"] = self.pipeline.record.as_dict()

    # ------------------------------------------------------------------ documents

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
        docs = self.pipeline.docs
        return docs if docs is not None else self.pipeline.questions()

    def build_all_requests(
        self, *, limit: int | None = None, samples: list[int] | None = None, **kwargs: Any
    ) -> None:
        if self.explanation.needs_vectors:
            require_introspect_model(self.config.task)
        needed = len(self.pipeline.questions())
        if samples:
            needed = max(samples) + 1
        elif limit is not None:
            if int(limit) < 1:
                raise IntrospectError(
                    f"{self.config.task}: --limit {limit} leaves no documents to evaluate; give "
                    "a positive count (or a fraction between 0 and 1 that keeps at least one)"
                )
            needed = min(needed, int(limit))
        self.ensure_references(needed)
        if kwargs.get("cache_requests"):
            # lm-eval keys its request cache by task name only: prompts built for another
            # subject or other options would come back. Ours are cheap to rebuild.
            logger.warning("introspect: %s: lm-eval's request cache is not used", self.config.task)
            kwargs["cache_requests"] = False
        super().build_all_requests(limit=limit, samples=samples, **kwargs)
        self.pipeline.record_map_fits()
        self._publish_record()

    def ensure_references(self, needed: int) -> Any:
        """Reference rows for the first ``needed`` documents (see `ReferencePipeline.ensure`)."""
        docs = self.pipeline.ensure(needed)
        self._publish_record()
        return docs

    # ------------------------------------------------------------------ prompts

    def _vector_table(self) -> VectorTable:
        """The vectors of this evaluation: filled while prompts render, cleared once scored."""
        if self._vectors is None:
            self._vectors = VectorTable(self.pipeline.vector_mapper())
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
        fewshot_as_multiturn: bool = False,
        chat_template: Any = None,
        gen_prefix: str | None = None,
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
        tokenizer = self.pipeline.explainer_tokenizer()
        if tokenizer is None:
            if self.options["chat_format"] == "template":
                raise IntrospectError(
                    f"{self.config.task}: chat_format=template needs a model named by pretrained="
                )
            return chat.plain_transcript(messages)
        text, _ = chat.render(tokenizer, messages, self.options["chat_format"])
        return text

    def _fewshot_messages(self, doc: Mapping[str, Any], k: int) -> list[dict[str, str]]:
        """K solved train-partition examples as alternating user/assistant turns."""
        if not k:
            return []
        if not self.explanation.uses_chat:
            raise IntrospectError(
                f"{self.config.task}: --num_fewshot needs a question-and-answer type; this one "
                "patches hidden states into a fixed prompt: run it with --num_fewshot 0"
            )
        if self._shots is None:
            train = ReferencePipeline(
                self.explanation.name,
                {**self.pipeline.metadata, "partition": "train"},
                task=self.config.task,
                known_model_arguments=self._known_model_arguments,
            )
            pool = min(len(train.questions()), max(4 * k, 16))
            self._shots = train.ensure(pool)
            self.pipeline.record.num_fewshot = k
            self.pipeline.record.fewshot_reference_key = train.record.reference_key
            self._publish_record()
        if len(self._shots) < k:
            raise IntrospectError(
                f"{self.config.task}: --num_fewshot {k} but the train partition has only "
                f"{len(self._shots)} examples"
            )
        rng = random.Random(f"{self.options['seed']}:{doc['question_id']}")
        messages: list[dict[str, str]] = []
        for index in rng.sample(range(len(self._shots)), k):
            shot = self._shots[index]
            turns = self.explanation.explainer_messages(shot, self.options)
            if messages:  # one system message, at the top
                turns = [m for m in turns if m["role"] != "system"]
            messages += [*turns, {"role": "assistant", "content": self.explanation.target(shot)}]
        return messages

    def construct_requests(self, doc: Mapping[str, Any], ctx: str, **kwargs: Any) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        with self._vector_table().active():  # requests may register vectors too
            requests = self.explanation.requests(doc, ctx, self.config.generation_kwargs)
        return [
            Instance(request_type=kind, doc=doc, arguments=arguments, idx=index, **kwargs)
            for index, (kind, arguments) in enumerate(requests)
        ]

    # ------------------------------------------------------------------ scoring

    def process_results(self, doc: Mapping[str, Any], results: list[Any]) -> dict[str, Any]:
        # lm-eval scores only after the model has answered every request: the vectors
        # the prompts named are no longer needed.
        if self._vectors is not None:
            self._vectors.clear()
        scores = self.explanation.score_results(doc, results, self._scoring_context())
        own = self._own_metrics()
        return {**scores, **calibration_values(self.explanation, doc, results, own)}

    def _scoring_context(self) -> ScoringContext:
        if getattr(self, "_scoring", None) is None:
            self._scoring = ScoringContext(
                options=self.options,
                subject_tokenizer=lambda: self.pipeline.subject_tokenizer,
                simulator=functools.cache(self.pipeline.simulator),
                judge=functools.cache(self.pipeline.judge),
            )
        return self._scoring

    def _metrics(self) -> Mapping[str, Any]:
        own = self._own_metrics()
        return {**own, **calibration_metrics(self.explanation, own)}

    def _own_metrics(self) -> Mapping[str, Any]:
        docs = self.pipeline.docs
        return self.explanation.metrics_for(docs) if docs is not None else self.explanation.metrics

    def aggregation(self) -> dict[str, Any]:
        return {name: metric.aggregate for name, metric in self._metrics().items()}

    def higher_is_better(self) -> dict[str, bool]:
        return {name: metric.higher_is_better for name, metric in self._metrics().items()}


def require_introspect_model(task: str) -> None:
    """Vector prompts mean nothing to lm-eval's plain HF model: stop before any work."""
    from harness_plugins.lm_eval_adapter.model import live_model_arguments

    if live_model_arguments() is None and not control_is_live():
        raise IntrospectError(
            f"{task} injects subject vectors into the explainer, which only the introspect "
            "model can do: run lm_eval --model introspect --model_args pretrained=..."
        )
