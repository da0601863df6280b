"""SAEs built in the test, in sae-lens' folder layout, whose features are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ground_truth.sae_format import Sae, save_sae


def random_sae(d_in: int = 8, d_sae: int = 12, hook: str = "blocks.1.hook_resid_post") -> Sae:
    generator = torch.Generator().manual_seed(0)
    return Sae(
        torch.randn(d_in, d_sae, generator=generator),
        torch.randn(d_sae, d_in, generator=generator),
        torch.randn(d_sae, generator=generator),
        torch.randn(d_in, generator=generator),
        cfg={"hook_name": hook, "model_name": "test", "dtype": "float32"},
    )


def concept_sae(folder: Path, directions: dict[str, torch.Tensor], layer: int) -> tuple[Path, Path]:
    """An SAE whose feature i reads and writes the unit concept direction i; labels file beside.

    Feature i fires by how far a residual points along concept i, so its reference
    label (the concept's name) is known. Returns (SAE folder, Neuronpedia-style labels file).
    """
    names = sorted(directions)
    decoder = torch.stack([directions[n] / directions[n].norm() for n in names])
    sae = Sae(
        decoder.T.contiguous(),
        decoder,
        torch.zeros(len(names)),
        torch.zeros(decoder.shape[1]),
        cfg={"hook_name": f"blocks.{layer}.hook_resid_post", "hook_layer": layer},
    )
    save_sae(folder, sae)
    labels = folder.parent / f"{folder.name}-labels.json"
    records = [
        {"modelId": "tiny", "layer": f"{layer}-test", "index": str(i), "description": name}
        for i, name in enumerate(names)
    ]
    labels.write_text(json.dumps(records))
    return folder, labels


def concept_directions(subject: Any, backend: Any, layer: int) -> dict[str, torch.Tensor]:
    """The built-in concept directions of a loaded subject at ``layer`` (the concepts source)."""
    from harness_plugins.builtin.features.sources import ConceptDirections

    options = {"layer": layer, "concepts": None, "exemplars": 1, "seed": 0}
    built = ConceptDirections().build(subject, backend, options, wanted=[])
    return {f.label: torch.tensor(f.vector) for f in built.values()}
