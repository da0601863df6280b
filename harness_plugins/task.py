"""The lm-eval task behind every ``introspect_<type>``: one class, driven by the explanation type.

lm-eval builds it from a YAML (``class: !function harness_plugins.task.IntrospectTask``,
``dataset_name: <type>``) or from the index entries `harness_plugins.lm_eval_tasks` adds
for plugin types. Options arrive in the task metadata (``--metadata`` merged with
``--model_args``). Reference answers are built lazily when lm-eval asks for requests,
for exactly the documents it will evaluate (``--limit``), and cached on disk.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import Task, TaskConfig
from lm_eval.filters import build_filter_ensemble

from harness_plugins import __version__, chat, vectors
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ReferenceContext, ScoringContext
from harness_plugins.options import resolve_options
from harness_plugins.plugins import get_registry

logger = logging.getLogger("introspect")

DATASET_PATH = "introspect"
TASK_PREFIX = "introspect_"


def task_name_for(type_name: str) -> str:
    return TASK_PREFIX + type_name


def resolve_task_options(
    task: str, explanation: Any, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """Validated options of one task, from lm-eval's merged metadata."""
    from harness_plugins.lm_eval_model import live_model_arguments

    others = {o.name for t in get_registry().explanation_types.values() for o in t.all_options()}
    return resolve_options(
        task,
        explanation.all_options(),
        metadata,
        known_model_arguments=live_model_arguments(),
        other_options=others,
        warn=logger.warning,
    )


class IntrospectTask(Task):
    """An lm-eval task whose documents, prompts and scores come from an explanation type."""

    VERSION = None

    def __init__(self, config: Mapping[str, Any] | None = None, **_: Any) -> None:
        config = dict(config or {})
        config.pop("class", None)
        type_name = config.get("dataset_name") or str(config.get("task", "")).removeprefix(
            TASK_PREFIX
        )
        self.registry = get_registry()
        self.explanation = self.registry.explanation_type(type_name)
        name = config.get("task") or task_name_for(type_name)
        metadata = dict(config.get("metadata") or {})
        self.options = resolve_task_options(name, self.explanation, metadata)
        self.registry.backend(self.options["backend"])  # unknown backend: fail now, not later

        self.explainer_spec, self.subject_spec = model_specs(name, metadata, self.options)
        self.mode = "self" if self.subject_spec == self.explainer_spec else "cross"
        self._check_models(name)

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
            num_fewshot=0,
            metadata={**metadata, "version": self.explanation.version},
        )
        self._questions: Any = None
        self._docs: Any = None
        self._explainer_tokenizer: Any = None
        self._subject: Any = None
        self._docs_for = 0
        self._mapper: Any = None
        self._record: dict[str, Any] = {
            "mode": self.mode,
            "explanation_type": type_name,
            "type_version": self.explanation.version,
            "package_version": __version__,
            "subject": self.subject_spec.describe(),
            "explainer": self.explainer_spec.describe() if self.explainer_spec else None,
            "options": {k: v for k, v in self.options.items()},
        }
        self._config.metadata["introspect"] = self._record

    # ------------------------------------------------------------------ checks

    def _check_models(self, name: str) -> None:
        """Cheap checks before any weights load: the subject exists, tokenizers match."""
        check_model_names([self.subject_spec, self.explainer_spec], self.registry.model_aliases)
        if (
            self.mode == "cross"
            and self.explanation.requires_same_tokenizer
            and self.explainer_spec
        ):
            subject_vocab = self._tokenizer_for(self.subject_spec).get_vocab()
            explainer_vocab = self._tokenizer_for(self.explainer_spec).get_vocab()
            if subject_vocab != explainer_vocab:
                raise IntrospectError(
                    f"{name}: subject {self.subject_spec.describe()} and explainer "
                    f"{self.explainer_spec.describe()} have different tokenizers, and "
                    f"{self.explanation.name} needs the same one; pick a subject from the "
                    "explainer's model family"
                )

    def _tokenizer_for(self, spec: Any) -> Any:
        from ground_truth.subject import load_tokenizer, shared_models

        live = shared_models.get(spec)
        return (
            live.tokenizer
            if live is not None
            else load_tokenizer(spec, self.registry.model_aliases)
        )

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
        from ground_truth.cache import quiet_datasets

        if self._questions is None:
            with quiet_datasets():
                self._questions = self.explanation.questions_for(self.options, self.subject_spec)
            if len(self._questions) == 0:
                raise IntrospectError(
                    f"{self.config.task}: the {self.options['partition']} partition has no questions"
                )
        return self._questions

    def test_docs(self) -> Any:
        return self._docs if self._docs is not None else self._all_questions()

    def build_all_requests(
        self, *, limit: int | None = None, samples: list[int] | None = None, **kwargs: Any
    ) -> None:
        if self.explanation.needs_vectors:
            require_introspect_model(self.config.task)
        needed = len(self._all_questions())
        if samples:
            needed = max(samples) + 1
        elif limit is not None:
            needed = min(needed, int(limit))
        self.ensure_references(needed)
        if kwargs.get("cache_requests"):
            # lm-eval keys its request cache by task name only: prompts built for another
            # subject or other options would come back. Ours are cheap to rebuild.
            logger.warning("introspect: %s: lm-eval's request cache is not used", self.config.task)
            kwargs["cache_requests"] = False
        super().build_all_requests(limit=limit, samples=samples, **kwargs)
        if self._mapper is not None:  # cross-explanation: how well the subject->explainer maps fit
            self._record["cross_model_maps"] = {
                f"subject layer {a} -> explainer layer {b}": fit
                for (a, b), fit in self._mapper.fits.items()
            }

    def ensure_references(self, needed: int) -> Any:
        """Reference rows for the first ``needed`` documents, from the cache or built now."""
        from ground_truth.cache import ReferenceKey, ReferenceStore, quiet_datasets

        questions = self._all_questions()
        needed = min(needed, len(questions))
        if self._docs is not None and self._docs_for >= needed:
            return self._docs
        self._docs_for = needed
        fingerprint = self._subject_fingerprint()
        reference_options = {
            option.name: self.options[option.name]
            for option in self.explanation.all_options()
            if option.affects_reference and option.name not in ("subject", "subject_peft", "seed")
        }
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
        }
        # A type may drop documents it cannot evaluate (facts the subject does not know):
        # read further into the questions until `needed` documents are kept, as --limit means.
        window, built_rows, build_seconds = needed, 0, 0.0
        while True:
            with quiet_datasets():
                result = ReferenceStore().ensure(
                    key, questions, window, self._build_references, describe=describe
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
                f"{self.config.task}: none of the {window} documents can be evaluated "
                f"for {self.subject_spec.describe()} (e.g. facts it does not state unpatched); "
                "see `introspect options` for the filter"
            )
        if len(kept) < needed or window > needed:
            logger.warning(
                "introspect: %s: %d documents kept from the first %d (the type drops the "
                "others, e.g. facts the subject does not know)",
                self.config.task,
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
            "introspect: %s: %s%s", self.config.task, how, f"; {summary}" if summary else ""
        )
        self._record.update(
            subject_fingerprint=fingerprint,
            explainer_fingerprint=self._explainer_fingerprint(fingerprint),
            reference_cache=str(result.path),
            reference_key=key.digest(),
            references_built=built_rows,
            reference_build_seconds=round(build_seconds, 3),
            reference_summary=summary,
        )
        return self._docs

    def _subject_model(self) -> Any:
        """The subject, loaded at most once per task (the explainer's weights in self mode)."""
        from ground_truth.subject import load_model

        if self._subject is None:
            self._subject = load_model(self.subject_spec, self.registry.model_aliases)
        return self._subject

    def _build_references(self, missing: Any) -> Any:
        subject = self._subject_model()
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

    def _subject_fingerprint(self) -> str:
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
            live = self._subject_model()
        remember_fingerprint(self.subject_spec, source, live.fingerprint)
        return live.fingerprint

    def _explainer_fingerprint(self, subject_fingerprint: str) -> str | None:
        from ground_truth.subject import shared_models

        if self.mode == "self":
            return subject_fingerprint
        live = shared_models.get(self.explainer_spec) if self.explainer_spec else None
        return live.fingerprint if live is not None else None

    # ------------------------------------------------------------------ prompts

    def doc_to_text(self, doc: Mapping[str, Any]) -> str:
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
        """The explainer prompt: its own chat template, unless lm-eval is asked to apply one."""
        with vectors.mapped(self._vector_mapper()):
            messages = self.explanation.explainer_messages(doc, self.options)
        if not self.explanation.uses_chat:
            return messages[-1]["content"]
        if system_instruction:
            messages = [{"role": "system", "content": system_instruction}, *messages]
        if apply_chat_template and chat_template is not None:
            return chat_template(messages)
        tokenizer = self._explainer_tokenizer_or_none()
        if tokenizer is None:
            if self.options["chat_format"] == "template":
                raise IntrospectError(
                    f"{self.config.task}: chat_format=template needs a model named by pretrained="
                )
            return chat.plain_transcript(messages)
        text, _ = chat.render(tokenizer, messages, self.options["chat_format"])
        return text

    def _vector_mapper(self) -> Any:
        """None when subject and explainer are one model; else the fitted subject->explainer maps."""
        if self.mode == "self" or not self.explanation.needs_vectors:
            return None
        if self._mapper is None:
            from harness_plugins.cross_model import mapper_for

            self._mapper = mapper_for(
                self.subject_spec, self.explainer_spec, self.registry, self.options
            )
        return self._mapper

    def _explainer_tokenizer_or_none(self) -> Any:
        if self._explainer_tokenizer is None and self.explainer_spec is not None:
            self._explainer_tokenizer = self._tokenizer_for(self.explainer_spec)
        return self._explainer_tokenizer

    def construct_requests(self, doc: Mapping[str, Any], ctx: str, **kwargs: Any) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        with vectors.mapped(self._vector_mapper()):  # requests may register vectors too
            requests = self.explanation.requests(doc, ctx, self.config.generation_kwargs)
        return [
            Instance(request_type=kind, doc=doc, arguments=arguments, idx=index, **kwargs)
            for index, (kind, arguments) in enumerate(requests)
        ]

    # ------------------------------------------------------------------ scoring

    def process_results(self, doc: Mapping[str, Any], results: list[Any]) -> dict[str, Any]:
        return self.explanation.score_results(doc, results, self._scoring_context())

    def _scoring_context(self) -> ScoringContext:
        if getattr(self, "_scoring", None) is None:
            self._scoring = ScoringContext(
                options=self.options,
                subject_tokenizer=functools.cache(lambda: self._tokenizer_for(self.subject_spec)),
                simulator=functools.cache(self._simulator),
            )
        return self._scoring

    def _simulator(self) -> Any:
        """The model that simulates from descriptions (default: the explainer's live weights)."""
        from ground_truth.subject import ModelSpec, load_model

        if self.options.get("simulator"):
            spec = ModelSpec.from_arguments({"pretrained": self.options["simulator"]})
        elif self.explainer_spec is not None:
            spec = self.explainer_spec
        else:
            raise IntrospectError(
                f"{self.config.task}: name a simulator model with --metadata '{{\"simulator\": ...}}'"
            )
        return load_model(spec, self.registry.model_aliases)

    def _metrics(self) -> Mapping[str, Any]:
        return (
            self.explanation.metrics_for(self._docs)
            if self._docs is not None
            else self.explanation.metrics
        )

    def aggregation(self) -> dict[str, Any]:
        return {name: metric.aggregate for name, metric in self._metrics().items()}

    def higher_is_better(self) -> dict[str, bool]:
        return {name: metric.higher_is_better for name, metric in self._metrics().items()}


def require_introspect_model(task: str) -> None:
    """Vector prompts mean nothing to lm-eval's plain HF model: stop before any work."""
    from harness_plugins.lm_eval_model import live_model_arguments

    if live_model_arguments() is None:
        raise IntrospectError(
            f"{task} injects subject vectors into the explainer, which only the introspect "
            "model can do: run lm_eval --model introspect --model_args pretrained=..."
        )


def model_specs(
    task: str, metadata: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[Any, Any]:
    """(explainer, subject): the subject is the explainer unless the options name another."""
    from ground_truth.subject import ModelSpec

    explainer = ModelSpec.from_arguments(metadata) if metadata.get("pretrained") else None
    if options["subject"]:
        return explainer, ModelSpec.from_arguments(options, prefix="subject_")
    if explainer is None:
        raise IntrospectError(
            f"{task}: no subject model: name one with --metadata "
            '\'{"subject": "..."}\' or evaluate a model given by pretrained='
        )
    return explainer, explainer


def check_model_names(specs: Iterable[Any], aliases: Mapping[str, Any]) -> None:
    """Fail before any weights load when a model or adapter path cannot exist.

    Aliases are checked when resolved (resolving may convert files, so not here).
    """
    from ground_truth.subject import check_peft, resolve_source

    for spec in specs:
        if spec is None:
            continue
        if spec.pretrained not in aliases:
            resolve_source(spec, aliases)
        check_peft(spec)
