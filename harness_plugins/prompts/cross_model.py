"""Subject vectors in the explainer's space, for cross-explanation (explainer != subject).

A vector read from the subject's residual stream at layer ``l`` is mapped by an affine map
fitted on paired hidden states (`ground_truth.affine_map`) into the explainer's residual
stream at the layer of the same relative depth, ``l*``; a write site is moved there too.
The shared texts are the built-in concept-bank sentences and the neutral sentences: the
same text for every subject and explainer, so fitted maps are reused from the cache.

An explainer with an adapter reads vectors through its *base* model's map: training fits
the map before the adapter exists, so that is the space the adapter learned to read, and
every adapter on one base shares one fit (not a 1,068-text read per trained explainer).

Every map's held-out R^2 is logged once and kept in `CrossModelMapper.fits`, so a task can
record how well the explainer's space stands in for the subject's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from ground_truth.affine_map import (
    AffineMap,
    MapStore,
    corresponding_layer,
    require_fast_tokenizer,
)
from ground_truth.sites import parse_site
from ground_truth.sites import site as site_name
from harness_plugins.errors import IntrospectError

logger = logging.getLogger("introspect")

_RESIDUAL_KINDS = {"pre": "resid_pre", "post": "resid_post"}


def shared_texts() -> list[str]:
    """The texts every cross-model map is fitted on: concept sentences, then neutral ones."""
    from harness_plugins.banks.concepts import builtin_concepts, neutral_sentences

    texts = [sentence for concept in builtin_concepts() for sentence in concept.sentences]
    return texts + neutral_sentences()


class CrossModelMapper:
    """The `harness_plugins.prompts.vectors.Mapper` of one (subject, explainer) pair.

    Models and backends load on first use; each (subject layer, explainer layer) map is
    fitted or loaded from the cache once per process. ``fits`` holds, per layer pair,
    ``{"r2", "pairs", "held_out", "cached"}`` for the task to record.
    """

    def __init__(
        self,
        subject_spec: Any,
        explainer_spec: Any,
        registry: Any,
        options: Mapping[str, Any],
        store: MapStore | None = None,
    ) -> None:
        self.subject_spec = subject_spec
        # the adapter's base: the space the adapter was trained to read (module docstring)
        self.explainer_spec = dataclasses.replace(explainer_spec, peft=None)
        self.registry = registry
        self.options = options
        self.store = store
        self.maps: dict[tuple[int, int], AffineMap] = {}
        self.fits: dict[tuple[int, int], dict[str, Any]] = {}
        self._subject: Any = None
        self._explainer: Any = None
        self._subject_backend: Any = None
        self._explainer_backend: Any = None
        self._texts: list[str] | None = None

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        if self._subject_backend is not None:
            return
        from ground_truth.subject import load_model

        aliases = self.registry.model_aliases
        # Strong references: `shared_models` only holds them weakly.
        self._subject = load_model(self.subject_spec, aliases)
        self._explainer = load_model(self.explainer_spec, aliases)
        require_fast_tokenizer(self._subject.tokenizer)
        require_fast_tokenizer(self._explainer.tokenizer)
        factory = self.registry.backend(self.options["backend"])
        batch_size = self.options["gt_batch_size"]
        self._subject_backend = factory(self._subject, batch_size=batch_size, progress=True)
        self._explainer_backend = factory(self._explainer, batch_size=batch_size, progress=True)

    @property
    def subject_layers(self) -> int:
        self._load()
        return int(self._subject_backend.n_layers)

    @property
    def explainer_layers(self) -> int:
        self._load()
        return int(self._explainer_backend.n_layers)

    def explainer_layer(self, subject_layer: int) -> int:
        """The explainer layer at the relative depth of ``subject_layer``."""
        return corresponding_layer(subject_layer, self.subject_layers, self.explainer_layers)

    # ------------------------------------------------------------------ maps

    def map_for(self, subject_layer: int) -> AffineMap:
        """The map from subject layer to its explainer layer, fitted or loaded once."""
        target_layer = self.explainer_layer(subject_layer)
        key = (subject_layer, target_layer)
        if key in self.maps:
            return self.maps[key]
        if self.store is None:
            self.store = MapStore()
        if self._texts is None:
            self._texts = shared_texts()
        fitted, built_now = self.store.get_or_fit(
            self._subject,
            self._explainer,
            self._subject_backend,
            self._explainer_backend,
            self._texts,
            subject_layer,
            target_layer,
            states=lambda: self._states(subject_layer, target_layer),
        )
        self.maps[key] = fitted
        self.fits[key] = {
            "r2": fitted.r2,
            "pairs": fitted.pairs,
            "held_out": fitted.held_out,
            "cached": not built_now,
        }
        logger.warning(
            "introspect: cross-model map subject layer %d -> explainer layer %d: R^2 %.3f on "
            "%d held-out positions, fitted on %d (%s)",
            subject_layer,
            target_layer,
            fitted.r2,
            fitted.held_out,
            fitted.pairs,
            "fitted now" if built_now else "loaded from the cache",
        )
        return fitted

    def _states(self, subject_layer: int, target_layer: int) -> tuple[Any, Any]:
        """Both models' states over the shared texts at the pair's layers. The first read
        of a model reads every one of its layers in the same pass and caches each
        (`ground_truth.text_states`), so every further layer pair is a solve, not a read."""
        from ground_truth.text_states import read_text_sites

        assert self._texts is not None
        found = []
        for loaded, backend, layer, who in (
            (self._subject, self._subject_backend, subject_layer, "subject"),
            (self._explainer, self._explainer_backend, target_layer, "explainer"),
        ):
            every = [site_name("resid_post", k) for k in range(backend.n_layers)]
            _, (states,) = read_text_sites(
                loaded,
                backend,
                self._texts,
                [site_name("resid_post", layer)],
                prefetch=every,
                description=f"cross-model map: {who} states (every layer, once)",
            )
            found.append(states)
        return found[0], found[1]

    def _site(self, site: str) -> tuple[str, int]:
        """(site kind, subject layer) of a residual-stream site; anything else cannot map."""
        try:
            kind, layer = parse_site(site, self.subject_layers)
        except ValueError as error:
            raise IntrospectError(f"cross-model map: {error}") from None
        if kind not in _RESIDUAL_KINDS:
            raise IntrospectError(
                f"cross-model map: site {site!r} is not in the residual stream; only "
                "blocks.L.hook_resid_pre and blocks.L.hook_resid_post can be mapped to another model"
            )
        return _RESIDUAL_KINDS[kind], layer

    def __call__(self, vector: Any, layer: int | None, site: str | None) -> tuple[Any, str | None]:
        """(vector in the explainer's space, ``site`` moved to the explainer's layer).

        The map follows ``layer`` (the subject layer the vector was read at) or, without
        it, the site's layer. A site's own layer is moved to its corresponding explainer
        layer (the same as the map's when, as usual, the two agree).
        """
        if layer is None and site is None:
            raise IntrospectError(
                "cross-model map: a vector without a subject layer or site cannot be mapped "
                "to the explainer; pass layer= when registering it"
            )
        parsed = self._site(site) if site is not None else None
        if layer is not None:
            subject_layer = int(layer)
        else:
            assert parsed is not None
            subject_layer = parsed[1]
        if not 0 <= subject_layer < self.subject_layers:
            raise IntrospectError(
                f"cross-model map: subject layer {subject_layer} out of range "
                f"0..{self.subject_layers - 1}"
            )
        mapped = self.map_for(subject_layer).apply(vector)
        if parsed is None:
            return mapped, None
        kind, site_layer = parsed
        return mapped, site_name(kind, self.explainer_layer(site_layer))


def mapper_for(
    subject_spec: Any, explainer_spec: Any, registry: Any, options: Mapping[str, Any]
) -> CrossModelMapper:
    """The mapper active while a cross-explanation renders its prompts (see `CrossModelMapper`)."""
    return CrossModelMapper(subject_spec, explainer_spec, registry, options)


def mapper_for_pipeline(pipeline: Any) -> CrossModelMapper | None:
    """None when a `ReferencePipeline`'s subject and explainer are one model (or a control
    explainer with no weights answers), or its type
    shows no vectors; else the subject->explainer mapper its prompts render through."""
    if pipeline.mode in ("self", "control") or not pipeline.explanation.needs_vectors:
        return None
    return mapper_for(
        pipeline.subject_spec, pipeline.explainer_spec, pipeline.registry, pipeline.options
    )
