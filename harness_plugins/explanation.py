"""What an explanation type is: the contract a built-in or third-party type implements.

An explanation type becomes the lm-eval task ``introspect_<name>``. It supplies the
questions (cheap, deterministic, in a fixed order), builds reference answers by running
the subject through a ground-truth backend, phrases each question for the explainer as
chat messages, and scores the explainer's answer. The reference pipeline
(`harness_plugins.references`) does options, caching and subject loading; the lm-eval
adapter (`harness_plugins.lm_eval_adapter.task`) does prompt rendering, requests and
aggregation.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness_plugins.options import COMMON_OPTIONS, Option
from harness_plugins.task_options import TaskOptions


@dataclass(frozen=True)
class Metric:
    """How per-document values become one number, and which direction is better.

    ``aggregate`` receives the list of per-document values, so corpus-level metrics
    (F1, correlation) are computed over the whole run, not averaged per document.
    """

    aggregate: Callable[[list[Any]], float]
    higher_is_better: bool = True
    stderr: Callable[[list[Any]], float] | None = None
    """Standard error of ``aggregate`` over the same per-document values, where lm-eval has
    no closed form for it (it has one for `mean`); the lm-eval adapter hands it to lm-eval."""

    def __post_init__(self) -> None:
        if self.stderr is not None:
            _DECLARED_STDERRS[self.aggregate] = self.stderr


# aggregate -> its declared stderr: lm-eval asks for a standard error by the aggregation
# function alone (`stderr_for_metric`), so the adapter looks it up here.
_DECLARED_STDERRS: weakref.WeakKeyDictionary[Any, Callable[[list[Any]], float]] = (
    weakref.WeakKeyDictionary()
)


def declared_stderr(aggregate: Any) -> Callable[[list[Any]], float] | None:
    """The standard error a `Metric` declared for ``aggregate``, if any."""
    try:
        return _DECLARED_STDERRS.get(aggregate)
    except TypeError:  # not weak-referenceable: nothing declared it
        return None


def mean(values: Sequence[Any]) -> float:
    """The average of the per-document values, as lm-eval's ``mean`` aggregation computes it.

    The lm-eval adapter hands lm-eval its own registered ``mean`` in its place, so lm-eval
    recognises it and reports its closed-form standard error (``mean_stderr``).
    """
    return sum(values) / len(values)


@dataclass
class ReferenceContext:
    """What `ExplanationType.build_references` runs the subject with."""

    subject: Any  # ground_truth.subject.LoadedModel
    backend: Any  # ground_truth.primitive.InterventionBackend
    options: TaskOptions


@dataclass
class ScoringContext:
    """What scoring may need beyond the document: loaded lazily, once per task."""

    options: TaskOptions
    subject_tokenizer: Callable[[], Any]
    simulator: Callable[[], Any]
    judge: Callable[[], Any] | None = None
    """The model that rates descriptions against references (option ``judge``; default: the explainer)."""


class Scores(dict):
    """One document's metric values (a plain dict to every caller), plus ``records``: what a
    metric cannot hold (a judge's prompts and ratings), for lm-eval's ``--log_samples``.

    Scoring never touches the document; the lm-eval adapter writes each record beside it
    as ``introspect_<name>`` (lm-eval logs the document it scored: its one channel for text).
    """

    def __init__(self, values: Mapping[str, Any] = (), records: Mapping[str, Any] = ()) -> None:
        super().__init__(values)
        self.records: dict[str, Any] = dict(records)


class ExplanationType(ABC):
    """Base class of explanation types; subclass it and register an instance through
    the ``introspect_register_explanation_types`` hook.

    Subclasses set ``name`` (lowercase identifier), ``version`` (bump it whenever the
    references it builds would change: it is part of the cache key), ``description``,
    ``options`` (type-specific `Option`s; the common ones are added automatically: every
    method gets them as the type's generated `TaskOptions`, read as ``options.name`` or,
    as a read-only mapping, ``options["name"]``),
    ``metrics`` and, for generation, ``stop_sequences`` and ``max_gen_tokens``.
    """

    name: str = ""
    version: str = "1"
    description: str = ""
    options: Sequence[Option] = ()
    metrics: Mapping[str, Metric] = {}
    baselines: Mapping[str, str | float] = {}
    """metric -> what a reader compares it with: another metric of the same run (a trivial
    answer, the logit lens, a probe) or a constant (chance). ``introspect report`` shows it."""
    output_type: str = "generate_until"
    stop_sequences: Sequence[str] = ("\n",)
    max_gen_tokens: int = 50
    requires_same_tokenizer: bool = False
    """True when references and explainer prompts share token ids (vectors, token positions)."""
    needs_vectors: bool = False
    """True when prompts carry subject vectors: only ``--model introspect`` can read them."""
    self_report: bool = False
    """True when the explainer must be the subject itself (injected thoughts): cross mode is refused."""
    uses_chat: bool = True
    """False for raw text prompts (Patchscopes' target prompts): no chat template then."""
    writes_answer: bool = True
    """True when the explainer writes an answer to a question: the run then reports
    ``top_answer_share`` (`harness_plugins.calibration`). False for Patchscopes."""
    answer_metrics: Sequence[str] = ()
    """Metrics that `score` computes from the written answer and the `reference_columns`
    alone (no model): each gets a constant-answer ceiling, and the control explainers
    (oracle, shuffled oracle, best constant) can be scored on them."""
    reference_columns: Sequence[str] = ("target",)
    """The columns `build_references` adds that define the reference answer; every one must
    be there when a build returns, and `score` needs no other for `answer_metrics`."""

    def all_options(self) -> list[Option]:
        own = {option.name for option in self.options}
        return [o for o in COMMON_OPTIONS if o.name not in own] + list(self.options)

    @abstractmethod
    def questions(self, options: TaskOptions) -> Any:
        """All documents of ``options['partition']`` as a `datasets.Dataset`, in a fixed order.

        Must be cheap (no model) and deterministic for the options; needs a unique
        ``question_id`` column. Train and test partitions must not share questions.
        """

    def validate(self, options: TaskOptions) -> None:
        """Check user files named by the options; called before any model loads. Raise
        `IntrospectError` on a bad one. Default: nothing to check."""
        return None

    def questions_for(self, options: TaskOptions, subject: Any) -> Any:
        """`questions` for a given subject `ModelSpec`; override when the subject matters
        (an instilled adapter brings its own scenarios)."""
        return self.questions(options)

    def check_layers(self, options: TaskOptions, n_layers: int) -> None:
        """Raise `IntrospectError` when an option names blocks the subject does not have.

        Called with the subject's block count before its weights load (when its config
        tells it), and again by `build_references` implementations that resolve layers.
        """
        return None

    @abstractmethod
    def build_references(self, questions: Any, context: ReferenceContext) -> Any:
        """``questions`` plus reference columns, one row each in the same order.

        Must add a ``target`` column (the text an ideal explainer answers). Run the
        subject only through ``context.backend`` so every backend gives the same result.
        """

    @abstractmethod
    def explainer_messages(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> list[dict[str, str]]:
        """The question to the explainer as chat messages; the last one is the user's."""

    @abstractmethod
    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        """Per-document metric values for the explainer's ``response`` (never raises on bad text)."""

    def requests(
        self, doc: Mapping[str, Any], context: str, generation: Mapping[str, Any]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        """The lm-eval requests for one document as (request type, arguments) pairs.

        Default: one ``generate_until`` on the rendered prompt. Types that also rank
        candidates add ``("loglikelihood", (context, continuation))`` pairs and read
        them back in `score_results`, in the same order.
        """
        return [("generate_until", (context, dict(generation)))]

    def metrics_for(self, docs: Any) -> Mapping[str, Metric]:
        """The metrics of a run over ``docs``; override when they depend on it (one per layer)."""
        return self.metrics

    def keep(self, doc: Mapping[str, Any], options: TaskOptions) -> bool:
        """Whether a document with references is evaluated (e.g. only facts the subject knows)."""
        return True

    def score_results(
        self, doc: Mapping[str, Any], results: Sequence[Any], context: ScoringContext | None = None
    ) -> dict[str, Any]:
        """Scores from the results of `requests`, in order; by default the generated answer(s)."""
        answers = results[0] if isinstance(results[0], list) else [results[0]]
        return self.score_responses(doc, answers)

    def score_responses(self, doc: Mapping[str, Any], responses: Sequence[str]) -> dict[str, Any]:
        """Scores for several answers to one document (``repeats`` > 1); default: the first."""
        return self.score(doc, responses[0])

    def repeats(self, options: TaskOptions) -> int:
        """How many answers lm-eval asks the explainer for per document."""
        return 1

    def generation_kwargs(self, options: TaskOptions) -> dict[str, Any]:
        """Decoding settings beyond stop sequences and length; greedy by default."""
        return {"do_sample": False}

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc["target"])

    def normalise_answer(self, response: str) -> str:
        """An answer as the type compares it (case and spacing ignored): what
        ``top_answer_share`` counts as the same answer."""
        return " ".join((response or "").split()).lower()

    def summarize_references(self, docs: Any) -> str:
        """One line about the subject's behaviour on these references, for the log and record."""
        return ""
