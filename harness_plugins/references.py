"""The reference pipeline: from options to reference answers, with no lm-eval in sight.

options (validated once, before any weights load) -> questions -> partition -> subject
-> fingerprint -> store (hit: load; miss: the backend runs the subject) -> keep window.
The lm-eval task (`harness_plugins.lm_eval_adapter.task`) is a thin adapter over it; the
``introspect`` commands (``ground-truth build``, training, ``matrix``) call it directly.
What a run used is a typed `ReferenceRecord`, written into lm-eval's results as
``configs.<task>.metadata.introspect``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness_plugins import __version__
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, ReferenceContext
from harness_plugins.identity import (
    explanation_mode,
    mode_summary,
    reference_content_fingerprint,
)
from harness_plugins.options import resolve_options
from harness_plugins.registry import Registry, get_registry
from harness_plugins.run_models import check_model_names, model_specs, tokenizer_for

logger = logging.getLogger("introspect")

TASK_PREFIX = "introspect_"
"""Every explanation type ``T`` is the lm-eval task ``introspect_T``."""


def task_name_for(type_name: str) -> str:
    return TASK_PREFIX + type_name


def type_name_of(task_or_type: str) -> str:
    return task_or_type.removeprefix(TASK_PREFIX)


@dataclass
class ReferenceRecord:
    """What one run's references are: who, with which options, from where, and how they look."""

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
        self.explanation: ExplanationType = self.registry.explanation_type(type_name)
        self.task = task or task_name_for(type_name)
        self.metadata = dict(metadata)
        if model_arguments is None:  # lm-eval mixes model arguments into the metadata
            from harness_plugins.lm_eval_adapter.model import model_argument_names

            model_arguments = model_argument_names()
        others = {o.name for t in self.registry.explanation_types.values() for o in t.all_options()}
        self.options = resolve_options(
            self.task,
            self.explanation.all_options(),
            self.metadata,
            model_arguments=model_arguments,
            known_model_arguments=known_model_arguments,
            other_options=others,
            warn=logger.warning,
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
        check_model_names([self.subject_spec, self.explainer_spec], self.registry.model_aliases)
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
            options=dict(self.options),
            explainer_adapter=self.explainer_spec.peft if self.explainer_spec else None,
            vector_projection=projection_kind(self.explainer_spec and self.explainer_spec.peft)
            if self.explanation.needs_vectors
            else None,
        )
        self._questions: Any = None
        self._docs: Any = None
        self._docs_for = 0
        self._subject: Any = None
        self._mapper: Any = None

    def _check_tokenizers(self) -> None:
        if not (
            self.mode == "cross"
            and self.explanation.requires_same_tokenizer
            and self.explainer_spec is not None
        ):
            return
        subject_vocab = tokenizer_for(self.subject_spec, self.registry).get_vocab()
        explainer_vocab = tokenizer_for(self.explainer_spec, self.registry).get_vocab()
        if subject_vocab != explainer_vocab:
            raise IntrospectError(
                f"{self.task}: subject {self.subject_spec.describe()} and explainer "
                f"{self.explainer_spec.describe()} have different tokenizers, and "
                f"{self.explanation.name} needs the same one; pick a subject from the "
                "explainer's model family"
            )

    # ------------------------------------------------------------------ questions

    def questions(self) -> Any:
        """Every question of the chosen partition, in the type's fixed order (no model)."""
        from ground_truth.cache import quiet_datasets

        if self._questions is None:
            with quiet_datasets():
                self._questions = self.explanation.questions_for(self.options, self.subject_spec)
            if len(self._questions) == 0:
                raise IntrospectError(
                    f"{self.task}: the {self.options['partition']} partition has no questions"
                )
        return self._questions

    @property
    def docs(self) -> Any:
        """The documents with references built so far (None before `ensure`)."""
        return self._docs

    # ------------------------------------------------------------------ references

    def ensure(self, needed: int) -> Any:
        """Reference rows for the first ``needed`` documents, from the store or built now."""
        from ground_truth.cache import ReferenceKey, ReferenceStore, quiet_datasets

        questions = self.questions()
        needed = min(needed, len(questions))
        if self._docs is not None and self._docs_for >= needed:
            return self._docs
        self._docs_for = needed
        self._check_layers()
        fingerprint = self.subject_fingerprint()
        reference_options, files = self.reference_options()
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
                    key, questions, window, self._build, describe=describe
                )
            built_rows += result.built_rows
            build_seconds += result.build_seconds
            rows = result.dataset.select(range(window))
            kept = [i for i, doc in enumerate(rows) if self.explanation.keep(doc, self.options)]
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
        self._docs = rows.select(kept[:needed])
        self._subject = None  # free a cross-mode subject; the explainer keeps its own weights
        if built_rows:
            how = f"built {built_rows} references in {build_seconds:.1f} s ({len(self._docs)} cached in {result.path})"
        else:
            how = f"reusing {len(self._docs)} cached references from {result.path}"
        summary = self.explanation.summarize_references(self._docs) if len(self._docs) else ""
        logger.warning(
            "introspect: %s: %s; %s%s",
            self.task,
            mode_summary(self.record),
            how,
            f"; {summary}" if summary else "",
        )
        self.record.subject_fingerprint = fingerprint
        self._record_explainer_fingerprints(fingerprint)
        self.record.reference_fingerprint = reference_content_fingerprint(self._docs)
        self.record.reference_cache = str(result.path)
        self.record.reference_key = key.digest()
        self.record.references_built = built_rows
        self.record.reference_build_seconds = round(build_seconds, 3)
        self.record.reference_summary = summary
        return self._docs

    def _check_layers(self) -> None:
        """Out-of-range layers fail here, from the subject's config, before weights load."""
        from ground_truth.subject import layer_count, shared_models

        live = shared_models.get(self.subject_spec) or self._subject
        if live is not None:
            count = getattr(getattr(live.model, "config", None), "num_hidden_layers", None)
        else:
            count = layer_count(self.subject_spec, self.registry.model_aliases)
        if isinstance(count, int):
            self.explanation.check_layers(self.options, count)

    def reference_options(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        """(the options in the cache key, {option: {path, sha256}} for the files they name).

        A file an option names enters the key by its content hash, not its path.
        """
        from harness_plugins.options import content_key

        values, files = {}, {}
        for option in self.explanation.all_options():
            if not option.affects_reference or option.name in ("subject", "subject_peft", "seed"):
                continue
            value = self.options[option.name]
            if option.names_file:
                value, record = content_key(value)
                if record is not None:
                    files[option.name] = record
            values[option.name] = value
        return values, files

    def subject_model(self) -> Any:
        """The subject, loaded at most once (the explainer's weights in self mode)."""
        from ground_truth.subject import load_model

        if self._subject is None:
            self._subject = load_model(self.subject_spec, self.registry.model_aliases)
        return self._subject

    def _build(self, missing: Any) -> Any:
        subject = self.subject_model()
        backend = self.registry.backend(self.options["backend"])(
            subject, batch_size=self.options["gt_batch_size"], progress=True
        )
        context = ReferenceContext(subject=subject, backend=backend, options=self.options)
        built = self.explanation.build_references(missing, context)
        if "target" not in built.column_names:
            raise IntrospectError(
                f"explanation type {self.explanation.name!r} built references without a target column"
            )
        return built

    def subject_fingerprint(self) -> str:
        """The subject's content fingerprint: remembered per source, else from its weights."""
        from ground_truth.subject import (
            known_fingerprint,
            remember_fingerprint,
            resolve_source,
            shared_models,
        )

        live = shared_models.get(self.subject_spec)
        source = resolve_source(self.subject_spec, self.registry.model_aliases)
        if live is None:
            known = known_fingerprint(self.subject_spec, source)
            if known is not None:
                return known
            live = self.subject_model()
        remember_fingerprint(self.subject_spec, source, live.fingerprint)
        return live.fingerprint

    def _record_explainer_fingerprints(self, subject_fingerprint: str) -> None:
        """The explainer's whole, base and adapter fingerprints (what is known without loading)."""
        from ground_truth.subject import (
            adapter_fingerprint,
            known_fingerprint,
            resolve_source,
            shared_models,
        )

        spec = self.explainer_spec
        record = self.record
        if spec is None or spec == self.subject_spec:
            record.explainer_fingerprint = subject_fingerprint
            record.explainer_base_fingerprint = subject_fingerprint
            return
        live = shared_models.get(spec)
        record.explainer_fingerprint = live.fingerprint if live is not None else None
        if not spec.peft:
            record.explainer_base_fingerprint = record.explainer_fingerprint
            return
        record.explainer_adapter_fingerprint = adapter_fingerprint(spec.peft)
        if self.mode == "self":  # the subject is the explainer's base
            record.explainer_base_fingerprint = subject_fingerprint
            return
        base = dataclasses.replace(spec, peft=None)
        live_base = shared_models.get(base)
        record.explainer_base_fingerprint = (
            live_base.fingerprint
            if live_base is not None
            else known_fingerprint(base, resolve_source(base, self.registry.model_aliases))
        )

    # ------------------------------------------------------------------ the explainer side

    def vector_mapper(self) -> Any:
        """None when subject and explainer are one model; else the fitted subject->explainer maps."""
        if self.explainer_spec is None or self.mode == "self" or not self.explanation.needs_vectors:
            return None  # no explainer weights (a control explainer): nothing to map into
        if self._mapper is None:
            from harness_plugins.prompts.cross_model import mapper_for

            self._mapper = mapper_for(
                self.subject_spec, self.explainer_spec, self.registry, self.options
            )
        return self._mapper

    def record_map_fits(self) -> None:
        """Cross-explanation: how well the subject->explainer maps fit, into the record."""
        if self._mapper is not None:
            self.record.cross_model_maps = {
                f"subject layer {a} -> explainer layer {b}": fit
                for (a, b), fit in self._mapper.fits.items()
            }

    @functools.cached_property
    def subject_tokenizer(self) -> Any:
        return tokenizer_for(self.subject_spec, self.registry)

    def explainer_tokenizer(self) -> Any:
        """The explainer's tokenizer, or None when no explainer model is named."""
        if self.explainer_spec is None:
            return None
        return self._explainer_tokenizer

    @functools.cached_property
    def _explainer_tokenizer(self) -> Any:
        return tokenizer_for(self.explainer_spec, self.registry)

    def simulator(self, option: str = "simulator") -> Any:
        """The model that simulates from descriptions (default: the explainer's live weights)."""
        from ground_truth.subject import ModelSpec, load_model

        if self.options.get(option):  # features' judge "none" never reaches here
            spec = ModelSpec.from_arguments({"pretrained": self.options[option]})
        elif self.explainer_spec is not None:
            spec = self.explainer_spec
        else:
            raise IntrospectError(
                f"{self.task}: name a {option} model with --metadata '{{\"{option}\": ...}}'"
            )
        return load_model(spec, self.registry.model_aliases)

    def judge(self) -> Any:
        """The model that rates descriptions (option ``judge``; default: the explainer)."""
        return self.simulator("judge")
