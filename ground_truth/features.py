"""Features: directions in a subject's residual stream, with what is known about each.

A feature source (a plugin; `introspect_register_feature_sources`) turns a loaded subject
and a backend into features: the vector (unit length, residual space of its layer), a
reference label, and exemplars (texts with per-token activations) for simulation
scoring. Built in: concept directions, MLP neurons and SAE features (registered by the
built-in feature-source plugins).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ground_truth.errors import IntrospectError


@dataclass(frozen=True)
class Exemplar:
    """A text, its tokens and the feature's activation at each token."""

    text: str
    tokens: tuple[str, ...]
    activations: tuple[float, ...]

    @property
    def peak(self) -> float:
        return max(self.activations) if self.activations else float("-inf")


@dataclass
class Feature:
    """One feature of one subject layer, ready to be explained and scored."""

    feature_id: str
    layer: int
    vector: list[float]
    label: str
    top_exemplars: list[Exemplar] = field(default_factory=list)
    random_exemplars: list[Exemplar] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class FeatureSource(ABC):
    """Turns a subject into features; register an instance with the feature-source hook."""

    description: str = ""

    @abstractmethod
    def feature_ids(self, options: Mapping[str, Any]) -> list[str]:
        """Every feature id, in a stable order, without running the subject (cheap)."""

    @abstractmethod
    def build(self, subject: Any, backend: Any, options: Mapping[str, Any]) -> dict[str, Feature]:
        """Every feature of `feature_ids`, computed from the subject through ``backend``.

        A source may take a keyword ``wanted`` (the feature ids being evaluated) and
        compute exemplars only for those; every feature still needs its vector and label
        (the nearest-neighbour baseline compares against all train features).
        """


def resolve_layer(layer: int, n_layers: int) -> int:
    """Option value -> block index: -1 means the middle block, negatives count from the end."""
    if layer == -1:
        return n_layers // 2
    index = layer + n_layers if layer < 0 else layer
    if not 0 <= index < n_layers:
        raise IntrospectError(
            f"features: layer {layer} is out of range for a subject with {n_layers} blocks; "
            f"pick a layer from {-n_layers} to {n_layers - 1} (-1: the middle one)"
        )
    return index


def top_and_random(
    pool: Sequence[Exemplar], k: int, rng: Any, exclude: Sequence[int] = ()
) -> tuple[list[Exemplar], list[Exemplar]]:
    """The ``k`` highest-peaking exemplars, and ``k`` others drawn at random.

    The draw is over the others in pool order, not in peak order: activations differ by
    float noise between backends, and a draw over a peak-sorted list would pick other
    exemplars whenever two near-equal peaks swap places.
    """
    order = sorted(range(len(pool)), key=lambda i: (-pool[i].peak, i))
    top = order[:k]
    rest = sorted(i for i in order[k:] if i not in set(exclude))
    drawn = rng.sample(rest, min(k, len(rest)))
    return [pool[i] for i in top], [pool[i] for i in sorted(drawn)]
