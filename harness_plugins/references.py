"""The reference pipeline: from options to reference answers, with no lm-eval in sight.

options (validated once, before any weights load) -> questions -> partition -> subject
-> fingerprint -> store (hit: load; miss: the backend runs the subject) -> keep window.
The models come from the catalog (`harness_plugins.models`); the lm-eval task
(`harness_plugins.lm_eval_adapter.task`) is a thin adapter over this pipeline, and the
``introspect`` commands (``ground-truth build``, training, ``matrix``) call it directly.
What a run used is a frozen `ReferenceRecord`, written into lm-eval's results as
``configs.<task>.metadata.introspect``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness_plugins import __version__
from harness_plugins.errors import IntrospectError
from harness_plugins.identity import (
    explanation_mode,
    mode_summary,
    reference_content_fingerprint,
)
from harness_plugins.models import ModelCatalog, model_arguments, model_specs
from harness_plugins.options import resolve_options
from harness_plugins.registry import Registry, get_registry
from harness_plugins.task_options import TaskOptions

if TYPE_CHECKING:
    from harness_plugins.explanation import ExplanationType

logger = logging.getLogger("introspect")

__all__ = [
    "TASK_PREFIX",
    "ReferencePipeline",
    "ReferenceRecord",
    "explanation_mode",
    "mode_summary",
    "task_name_for",
    "type_name_of",
]

TASK_PREFIX = "introspect_"
"""Every explanation type ``T`` is the lm-eval task ``introspect_T``."""


def task_name_for(type_name: str) -> str:
    return TASK_PREFIX + type_name


def type_name_of(task_or_type: str) -> str:
    return task_or_type.removeprefix(TASK_PREFIX)


@dataclass(frozen=True)
class ReferenceRecord:
    """What one run's references are: who, with which options, from where, and how they look.

    Frozen: a later stage adds what it learned with `dataclasses.replace`.
    """

    mode: str
    explanation_type: str
    type_version: str
    subject: str
    explainer: str | None
    options: dict[str, Any]
    package_version: str = __version__
    subject_fingerprint: str | None = None
    explainer_fingerprint: str | None = None
    explainer_base_fingerprint: str | None = None
    explainer_adapter: str | None = None
    explainer_adapter_fingerprint: str | None = None
    reference_fingerprint: str | None = None
    reference_cache: str | None = None
    reference_key: str | None = None
    references_built: int = 0
    reference_build_seconds: float = 0.0
    reference_summary: str = ""
    cross_model_maps: dict[str, Any] | None = field(default=None)
    vector_projection: str | None = None
    """How subject vectors reach the explainer's slots: ``learned`` (the adapter's trained
    projections) or ``fixed`` (the fitted map, or scale * I for self)."""
    num_fewshot: int = 0
    """Solved examples before each question (``--num_fewshot``), drawn from the train partition."""
    fewshot_reference_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form lm-eval writes into its results (fields not yet known left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class _Partition:
    """The questions and kept documents of one partition (the task's own, or few-shot train)."""

    options: TaskOptions
    questions: Any = None
    docs: Any = None
    docs_for: int = 0
    key: str | None = None


class ReferencePipeline:
    """The references of one explanation type for one (explainer, subject) pair and options.

    Construction validates everything that can be checked without weights: the options
    (``known_model_arguments``: the evaluated model's own argument names, when known, so
    that any other key is an error), the backend, the model names and, where the type
    needs one tokenizer, that subject and explainer share it.
    """

    def __init__(
        self,
        type_name: str,
        metadata: Mapping[str, Any],
        *,
        task: str | None = None,
        model_arguments: Iterable[str] | None = None,
        known_model_arguments: Iterable[str] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.registry = registry or get_registry()
        self.models = ModelCatalog(self.registry)
        self.explanation: ExplanationType = self.registry.explanation_type(type_name)
        self.task = task or task_name_for(type_name)
        self.metadata = dict(metadata)
        others = {o.name for t in self.registry.explanation_types.values() for o in t.all_options()}
        self.options = resolve_options(
            self.task,
            self.explanation.all_options(),
            self.metadata,
            # lm-eval mixes model arguments into the metadata
            model_arguments=(
                _default_model_arguments() if model_arguments is None else model_arguments
            ),
            known_model_arguments=known_model_arguments,
            other_options=others,
            warn=logger.warning,
            type_name=self.explanation.name,
        )
        self.registry.backend(self.options["backend"])  # unknown backend: fail now, not later
        self.explanation.validate(self.options)  # user files too: before the ~45 s model load
        self.explainer_spec, self.subject_spec = model_specs(self.task, self.metadata, self.options)
        self.mode = explanation_mode(self.explainer_spec, self.subject_spec)
        control = self.metadata.get("control")
        if control and self.explainer_spec is None:  # a control explainer: no weights at all
            self.mode = "control"
        if self.mode == "cross" and self.explanation.self_report:
            raise IntrospectError(
                f"{self.task} is a self-report (vectors go into the subject's own residual "
                "stream): drop subject= so that the explainer is the subject"
            )
        self.models.check_names([self.subject_spec, self.explainer_spec])
        self._check_tokenizers()
        from harness_plugins.prompts.projections import projection_kind

        self.record = ReferenceRecord(
            mode=self.mode,
            explanation_type=self.explanation.name,
            type_version=self.explanation.version,
            subject=self.subject_spec.describe(),
            explainer=(
                self.explainer_spec.describe()
                if self.explainer_spec
                else (f"control={control}" if control else None)
            ),
            options=self.options.as_dict(),
            explainer_adapter=self.explainer_spec.peft if self.explainer_spec else None,
            vector_projection=projection_kind(self.explainer_spec and self.explainer_spec.peft)
            if self.explanation.needs_vectors
            else None,
        )
        self._partitions = {self.options["partition"]: _Partition(self.options)}
        self._subject: Any = None

    def _check_tokenizers(self) -> None:
        if not (
            self.mode == "cross"
            and self.explanation.requires_same_tokenizer
            and self.explainer_spec is not None
        ):
            return
        subject_vocab = self.models.tokenizer(self.subject_spec).get_vocab()
        explainer_vocab = self.models.tokenizer(self.explainer_spec).get_vocab()
        if subject_vocab != explainer_vocab:
            raise IntrospectError(
                f"{self.task}: subject {self.subject_spec.describe()} and explainer "
                f"{self.explainer_spec.describe()} have different tokenizers, and "
                f"{self.explanation.name} needs the same one; pick a subject from the "
                "explainer's model family"
            )

    # ------------------------------------------------------------------ questions

    def _partition(self, name: str | None) -> _Partition:
        """The task's own partition, or another one (few-shot examples come from train)."""
        name = name or self.options["partition"]
        if name not in self._partitions:
            options = self.options.replace(partition=name)
            self.explanation.validate(options)
            self._partitions[name] = _Partition(options)
        return self._partitions[name]

    def questions(self, partition: str | None = None) -> Any:
        """Every question of a partition (default: the task's), in the type's fixed order (no model)."""
        from ground_truth.cache import quiet_datasets

        part = self._partition(partition)
        if part.questions is None:
            with quiet_datasets():
                part.questions = self.explanation.questions_for(part.options, self.subject_spec)
            if len(part.questions) == 0:
                raise IntrospectError(
                    f"{self.task}: the {part.options['partition']} partition has no questions"
                )
        return part.questions

    @property
    def docs(self) -> Any:
        """The task's documents with references built so far (None before `ensure`)."""
        return self._partitions[self.options["partition"]].docs

    def reference_key(self, partition: str | None = None) -> str | None:
        """The store key of a partition's references (None before `ensure`)."""
        return self._partition(partition).key

    # ------------------------------------------------------------------ references

    def ensure(self, needed: int, partition: str | None = None) -> Any:
        """Reference rows for the first ``needed`` documents of a partition (default: the
        task's), from the store or built now; the task's own also update `record`."""
        from ground_truth.cache import ReferenceKey, ReferenceStore, quiet_datasets

        part = self._partition(partition)
        questions = self.questions(partition)
        needed = min(needed, len(questions))
        if part.docs is not None and part.docs_for >= needed:
            return part.docs
        part.docs_for = needed
        self._check_layers()
        fingerprint = self.subject_fingerprint()
        reference_options, files = self.reference_options(part.options)
        key = ReferenceKey.make(
            self.explanation.name,
            self.explanation.version,
            reference_options,
            fingerprint,
            self.options["seed"],
        )
        describe = {
            "subject": self.subject_spec.describe(),
            "backend": self.options["backend"],
            "package_version": __version__,
            **({"files": files} if files else {}),
        }
        # A type may drop documents it cannot evaluate (facts the subject does not know):
        # read further into the questions until `needed` documents are kept, as --limit means.
        window, built_rows, build_seconds = needed, 0, 0.0
        while True:
            with quiet_datasets():
                result = ReferenceStore().ensure(
                    key,
                    questions,
                    window,
                    lambda missing: self._build(missing, part.options),
                    describe=describe,
                )
            built_rows += result.built_rows
            build_seconds += result.build_seconds
            rows = result.dataset.select(range(window))
            kept = [i for i, doc in enumerate(rows) if self.explanation.keep(doc, part.options)]
            if len(kept) >= needed or window >= len(questions):
                break
            window = min(len(questions), 2 * window)
        if not kept:
            raise IntrospectError(
                f"{self.task}: none of the {window} documents can be evaluated "
                f"for {self.subject_spec.describe()} (e.g. facts it does not state unpatched); "
                "see `introspect options` for the filter"
            )
        if len(kept) < needed or window > needed:
            logger.warning(
                "introspect: %s: %d documents kept from the first %d (the type drops the "
                "others, e.g. facts the subject does not know)",
                self.task,
                min(len(kept), needed),
                window,
            )
        docs = part.docs = rows.select(kept[:needed])
        part.key = key.digest()
        self._subject = None  # free a cross-mode subject; the explainer keeps its own weights
        if built_rows:
            how = f"built {built_rows} references in {build_seconds:.1f} s ({len(docs)} cached in {result.path})"
        else:
            how = f"reusing {len(docs)} cached references from {result.path}"
        summary = self.explanation.summarize_references(docs) if len(docs) else ""
        logger.warning(
            "introspect: %s: %s; %s%s",
            self.task,
            mode_summary(self.record),
            how,
            f"; {summary}" if summary else "",
        )
        if part is self._partitions[self.options["partition"]]:
            self.record = dataclasses.replace(
                self.record,
                subject_fingerprint=fingerprint,
                **self.models.explainer_fingerprints(
                    self.explainer_spec, self.subject_spec, self.mode, fingerprint
                ),
                reference_fingerprint=reference_content_fingerprint(docs),
                reference_cache=str(result.path),
                reference_key=part.key,
                references_built=built_rows,
                reference_build_seconds=round(build_seconds, 3),
                reference_summary=summary,
            )
        return docs

    def _check_layers(self) -> None:
        """Out-of-range layers fail here, from the subject's config, before weights load."""
        count = self.models.layer_count(self.subject_spec, loaded=self._subject)
        if isinstance(count, int):
            self.explanation.check_layers(self.options, count)

    def reference_options(
        self, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        """(the options in the cache key, {option: {path, sha256}} for the files they name).

        A file an option names enters the key by its content hash, not its path.
        """
        from harness_plugins.options import content_key

        options = self.options if options is None else options
        values, files = {}, {}
        for option in self.explanation.all_options():
            if not option.affects_reference or option.name in ("subject", "subject_peft", "seed"):
                continue
            value = options[option.name]
            if option.names_file:
                value, record = content_key(value)
                if record is not None:
                    files[option.name] = record
            values[option.name] = value
        return values, files

    def subject_model(self) -> Any:
        """The subject, loaded at most once (the explainer's weights in self mode)."""
        if self._subject is None:
            self._subject = self.models.load(self.subject_spec)
        return self._subject

    def _build(self, missing: Any, options: Mapping[str, Any]) -> Any:
        from harness_plugins.explanation import ReferenceContext

        subject = self.subject_model()
        backend = self.registry.backend(options["backend"])(
            subject, batch_size=options["gt_batch_size"], progress=True
        )
        context = ReferenceContext(subject=subject, backend=backend, options=options)
        built = self.explanation.build_references(missing, context)
        declared = dict.fromkeys(["target", *self.explanation.reference_columns])
        absent = [column for column in declared if column not in built.column_names]
        if absent:
            raise IntrospectError(
                f"explanation type {self.explanation.name!r} built references without its "
                f"declared column(s) {', '.join(absent)} (reference_columns); add them in "
                "build_references"
            )
        return built

    def subject_fingerprint(self) -> str:
        """The subject's content fingerprint: remembered per source, else from its weights."""
        return self.models.fingerprint(self.subject_spec, self.subject_model)


def _default_model_arguments() -> frozenset[str]:
    return model_arguments().possible
