"""The explainer side of one introspect task: what prompts and scores need beyond references.

The vector mapper (cross mode), the explainer's and subject's tokenizers, and the models
that simulate from or judge descriptions, each built on first use and kept for the task.
The reference pipeline knows none of them: it only builds references.
"""

from __future__ import annotations

import functools
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ScoringContext
from harness_plugins.references import ReferencePipeline


class ExplainerServices:
    """Lazily built explainer-side services of one task (see module doc)."""

    def __init__(self, pipeline: ReferencePipeline) -> None:
        self.pipeline = pipeline
        self._mapper: Any = None
        self._mapper_built = False

    def vector_mapper(self) -> Any:
        """None when subject and explainer are one model; else the fitted subject->explainer maps."""
        if not self._mapper_built:
            from harness_plugins.prompts.cross_model import mapper_for_pipeline

            self._mapper = mapper_for_pipeline(self.pipeline)
            self._mapper_built = True
        return self._mapper

    def map_fits(self) -> dict[str, Any] | None:
        """Cross-explanation: how well the subject->explainer maps fit (None before any map)."""
        if self._mapper is None:
            return None
        return {
            f"subject layer {a} -> explainer layer {b}": fit
            for (a, b), fit in self._mapper.fits.items()
        }

    @functools.cached_property
    def subject_tokenizer(self) -> Any:
        return self.pipeline.models.tokenizer(self.pipeline.subject_spec)

    @functools.cached_property
    def explainer_tokenizer(self) -> Any:
        """The explainer's tokenizer, or None when no explainer model is named."""
        spec = self.pipeline.explainer_spec
        return self.pipeline.models.tokenizer(spec) if spec is not None else None

    def simulator(self, option: str = "simulator") -> Any:
        """The model that simulates from descriptions (default: the explainer's live weights)."""
        from ground_truth.subject import ModelSpec

        options = self.pipeline.options
        if options.get(option):  # features' judge "none" never reaches here
            spec = ModelSpec.from_arguments({"pretrained": options[option]})
        elif self.pipeline.explainer_spec is not None:
            spec = self.pipeline.explainer_spec
        else:
            raise IntrospectError(
                f"{self.pipeline.task}: name a {option} model with "
                f"--metadata '{{\"{option}\": ...}}'"
            )
        return self.pipeline.models.load(spec)

    def judge(self) -> Any:
        """The model that rates descriptions (option ``judge``; default: the explainer)."""
        return self.simulator("judge")

    @functools.cached_property
    def scoring_context(self) -> ScoringContext:
        """What `ExplanationType.score_results` receives, one per task."""
        return ScoringContext(
            options=self.pipeline.options,
            subject_tokenizer=lambda: self.subject_tokenizer,
            simulator=functools.cache(self.simulator),
            judge=functools.cache(self.judge),
        )
