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
    pool: _Pool, subject: Any, backend: Any, sites: Sequence[str]
) -> tuple[list[list[int]], list[list[Any]]]:
    """Token ids of every pool sentence and, per site, its activations at every token."""
    from ground_truth.primitive import Read

    tokenizer = subject.tokenizer
    sequences = [tokenizer(text)["input_ids"] for text in pool.texts]
    reads = [Read(site, row, None) for row in range(len(sequences)) for site in sites]
    values = backend.forward(
        sequences, reads=reads, description="features: reading the concept pool"
    ).reads
    per_site = [
        [values[row * len(sites) + s] for row in range(len(sequences))] for s in range(len(sites))
    ]
    return sequences, per_site


def _exemplars(
    pool: _Pool, sequences: list[list[int]], activations: list[Any], tokenizer: Any
) -> list[Exemplar]:
    return [
        Exemplar(
            text,
            tuple(tokenizer.convert_ids_to_tokens(ids)),
            tuple(round(float(a), 4) for a in acts),
        )
        for text, ids, acts in zip(pool.texts, sequences, activations, strict=True)
    ]


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

    def build(self, subject: Any, backend: Any, options: Mapping[str, Any]) -> dict[str, Feature]:
        import torch

        pool = _Pool.load(options.get("concepts"))
        layer = resolve_layer(options["layer"], backend.n_layers)
        sequences, (residuals,) = _read_pool(pool, subject, backend, [site("resid_post", layer)])
        neutral = torch.cat(
            [r for r, owner in zip(residuals, pool.owners, strict=True) if owner is None]
        ).mean(0)
        features = {}
        for name in pool.concepts:
            mean = torch.cat(
                [r for r, owner in zip(residuals, pool.owners, strict=True) if owner == name]
            ).mean(0)
            direction = mean - neutral
            direction = direction / direction.norm().clamp_min(1e-8)
            activations = [r @ direction for r in residuals]
            exemplars = _exemplars(pool, sequences, activations, subject.tokenizer)
            top, rand = top_and_random(
                exemplars, options["exemplars"], _rng("concept", options["seed"], name)
            )
            features[f"concept:{name}"] = Feature(
                f"concept:{name}", layer, direction.tolist(), name, top, rand
            )
        return features


class MlpNeurons(FeatureSource):
    description = "MLP neurons of a layer that fire most selectively for one concept of the bank"

    def feature_ids(self, options: Mapping[str, Any]) -> list[str]:
        return [f"neuron-rank-{rank:03d}" for rank in range(options["neurons"])]

    def build(self, subject: Any, backend: Any, options: Mapping[str, Any]) -> dict[str, Feature]:
        import torch

        pool = _Pool.load(options.get("concepts"))
        layer = resolve_layer(options["layer"], backend.n_layers)
        sequences, (hidden,) = _read_pool(pool, subject, backend, [site("mlp_post", layer)])
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
        features = {}
        for rank, neuron in enumerate(ranked):
            direction = w_out[neuron] / w_out[neuron].norm().clamp_min(1e-8)
            label = pool.concepts[int(which[neuron])]
            exemplars = _exemplars(
                pool, sequences, [h[:, neuron] for h in hidden], subject.tokenizer
            )
            top, rand = top_and_random(
                exemplars, options["exemplars"], _rng("neuron", options["seed"], neuron)
            )
            fid = f"neuron-rank-{rank:03d}"
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
