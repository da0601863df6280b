"""What both Patchscope types share: layer sweeps, per-layer metrics, seeded positions."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import Metric, mean
from harness_plugins.metric_names import layer_metric


def seeded_rng(*parts: Any) -> random.Random:
    return random.Random(
        int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)
    )


def parse_layers(text: str, n_layers: int) -> list[int]:
    """'all', 'every:K', or a comma list of block indices (negatives from the end)."""
    text = str(text).strip()
    if text == "all":
        return list(range(n_layers))
    if text.startswith("every:"):
        step = int(text.split(":", 1)[1])
        return list(range(0, n_layers, max(1, step)))
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise IntrospectError(
            f"layers={text!r}: use all, every:K or a comma list like 0,4,8"
        ) from None
    resolved = sorted({layer + n_layers if layer < 0 else layer for layer in layers})
    if not resolved or resolved[0] < 0 or resolved[-1] >= n_layers:
        raise IntrospectError(
            f"layers={text!r} outside 0..{n_layers - 1} of the subject; give layers in that "
            "range (negatives count from the end), every:K or all"
        )
    return resolved


def per_layer_metrics(
    layers: Sequence[int], names: Sequence[tuple[str, bool]]
) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    for name, higher in names:
        metrics[name] = Metric(mean, higher_is_better=higher)
        for layer in layers:
            metrics[layer_metric(name, layer)] = Metric(mean, higher_is_better=higher)
    return metrics


def layer_mean(values: Mapping[int, float]) -> float:
    return float(sum(values.values()) / len(values)) if values else float("nan")
