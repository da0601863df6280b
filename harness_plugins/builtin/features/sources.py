"""Built-in feature sources: concept directions and MLP neurons, read off the concept bank.

Both read the subject once over a pool of labelled sentences (every concept's sentences
plus neutral ones): concept directions are differences of mean residuals (concept minus
neutral) at a layer; neurons are the MLP neurons of a layer that fire most selectively
for one concept, which then is their reference label. Either way the pool supplies the
exemplars (texts with per-token activations) that simulation scoring needs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ground_truth.features import Exemplar, Feature, FeatureSource, resolve_layer, top_and_random
from ground_truth.sites import site
from harness_plugins.registry import hookimpl


@dataclass
class _Pool:
    """The concept bank as one list of sentences, with their concept (None: neutral)."""

    texts: list[str]
    owners: list[str | None]
    concepts: list[str]

    @classmethod
    def load(cls, path: str | None) -> _Pool:
        from harness_plugins.banks.concepts import load_concepts

        concepts, neutral = load_concepts(path)
        texts = [s for c in concepts for s in c.sentences] + list(neutral)
        owners: list[str | None] = [c.name for c in concepts for _ in c.sentences] + [None] * len(
            neutral
        )
        return cls(texts, owners, [c.name for c in concepts])


def _read_pool(
    pool: _Pool, subject: Any, backend: Any, at: str
) -> tuple[list[list[int]], list[Any]]:
    """Token ids of every pool sentence and its activations at every token of site ``at``."""
    sequences, (activations,) = read_pool_sites(pool, subject, backend, [at])
    return sequences, activations


def read_pool_sites(
    pool: _Pool, subject: Any, backend: Any, sites: Sequence[str]
) -> tuple[list[list[int]], list[list[Any]]]:
    """Token ids of every pool sentence and, per site, its activations at every token.

    The activations of each site are an artifact (`ground_truth.text_states`): read once per
    subject, backend, site and pool content, then shared by every build, whatever its
    limit (and by the cross-model maps, which read the same texts). The sites missing from
    the cache are read together, in one pass over the pool.
    """
    from ground_truth.text_states import read_text_sites

    return read_text_sites(
        subject,
        backend,
        pool.texts,
        sites,
        description="features: reading the concept pool (once)",
    )


def _exemplars(
    pool: _Pool, sequences: list[list[int]], activations: list[Any], tokens: list[tuple[str, ...]]
) -> list[Exemplar]:
    return [
        Exemplar(text, words, tuple(round(float(a), 4) for a in acts))
        for text, words, acts in zip(pool.texts, tokens, activations, strict=True)
    ]


def _tokens(sequences: list[list[int]], tokenizer: Any) -> list[tuple[str, ...]]:
    return [tuple(tokenizer.convert_ids_to_tokens(ids)) for ids in sequences]


def _progress(items: Sequence[Any], description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(items, desc=description, leave=False, disable=len(items) < 20)


def _rng(*parts: Any) -> random.Random:
    return random.Random(
        int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)
    )


class ConceptDirections(FeatureSource):
    description = (
        "difference of mean residuals at a layer: sentences about a concept minus neutral ones"
    )

    def feature_ids(self, options: Mapping[str, Any]) -> list[str]:
        return [f"concept:{name}" for name in _Pool.load(options.get("concepts")).concepts]

    def build(
        self,
        subject: Any,
        backend: Any,
        options: Mapping[str, Any],
        wanted: Sequence[str] | None = None,
    ) -> dict[str, Feature]:
        """Every concept's direction; exemplars only for the ``wanted`` ids (default: all)."""
        import torch

        pool = _Pool.load(options.get("concepts"))
        layer = resolve_layer(options["layer"], backend.n_layers)
        sequences, residuals = _read_pool(pool, subject, backend, site("resid_post", layer))
        neutral = torch.cat(
            [r for r, owner in zip(residuals, pool.owners, strict=True) if owner is None]
        ).mean(0)
        directions = {}
        for name in pool.concepts:
            mean = torch.cat(
                [r for r, owner in zip(residuals, pool.owners, strict=True) if owner == name]
            ).mean(0)
            direction = mean - neutral
            directions[name] = direction / direction.norm().clamp_min(1e-8)
        wanted_ids = set(self.feature_ids(options) if wanted is None else wanted)
        chosen = [name for name in pool.concepts if f"concept:{name}" in wanted_ids]
        tokens = _tokens(sequences, subject.tokenizer) if chosen else []
        features = {}
        for name in pool.concepts:
            fid, direction = f"concept:{name}", directions[name]
            features[fid] = Feature(fid, layer, direction.tolist(), name)
        for name in _progress(chosen, "features: exemplars"):
            activations = [r @ directions[name] for r in residuals]
            exemplars = _exemplars(pool, sequences, activations, tokens)
            feature = features[f"concept:{name}"]
            feature.top_exemplars, feature.random_exemplars = top_and_random(
                exemplars, options["exemplars"], _rng("concept", options["seed"], name)
            )
        return features


class MlpNeurons(FeatureSource):
    description = "MLP neurons of a layer that fire most selectively for one concept of the bank"

    def feature_ids(self, options: Mapping[str, Any]) -> list[str]:
        return [f"neuron-rank-{rank:03d}" for rank in range(options["neurons"])]

    def build(
        self,
        subject: Any,
        backend: Any,
        options: Mapping[str, Any],
        wanted: Sequence[str] | None = None,
    ) -> dict[str, Feature]:
        """The most selective neurons; exemplars only for the ``wanted`` ids (default: all)."""
        import torch

        pool = _Pool.load(options.get("concepts"))
        layer = resolve_layer(options["layer"], backend.n_layers)
        sequences, hidden = _read_pool(pool, subject, backend, site("mlp_post", layer))
        peaks = torch.stack([h.max(0).values for h in hidden])  # [sentences, d_mlp]
        owners = pool.owners
        per_concept = torch.stack(
            [
                peaks[[i for i, o in enumerate(owners) if o == name]].mean(0)
                for name in pool.concepts
            ]
        )  # [concepts, d_mlp]
        spread = peaks.std(0).clamp_min(1e-6)
        best, which = per_concept.max(0)
        selectivity = (best - peaks.mean(0)) / spread
        ranked = torch.argsort(selectivity, descending=True)[: options["neurons"]].tolist()
        w_out = backend.mlp_output_weights(layer)
        wanted_ids = set(self.feature_ids(options) if wanted is None else wanted)
        tokens: list[tuple[str, ...]] = []
        features = {}
        for rank, neuron in enumerate(_progress(ranked, "features: neurons")):
            direction = w_out[neuron] / w_out[neuron].norm().clamp_min(1e-8)
            label = pool.concepts[int(which[neuron])]
            fid = f"neuron-rank-{rank:03d}"
            top: list[Any] = []
            rand: list[Any] = []
            if fid in wanted_ids:
                tokens = tokens or _tokens(sequences, subject.tokenizer)
                exemplars = _exemplars(pool, sequences, [h[:, neuron] for h in hidden], tokens)
                top, rand = top_and_random(
                    exemplars, options["exemplars"], _rng("neuron", options["seed"], neuron)
                )
            features[fid] = Feature(
                fid,
                layer,
                direction.tolist(),
                label,
                top,
                rand,
                extra={"neuron": neuron, "selectivity": round(float(selectivity[neuron]), 4)},
            )
        return features


@hookimpl
def introspect_register_feature_sources(register: Any) -> None:
    register("concepts", ConceptDirections())
    register("neurons", MlpNeurons())
