"""Learned projections: how a trained explainer reads a subject vector at a ``<rep>`` slot.

Untrained, a slot holds ``scale * map(v)``: the fitted least-squares map for
cross-explanation (`harness_plugins.prompts.cross_model`), the vector itself for
self-explanation. Training an explainer also trains one linear projection per subject
layer (subject width -> explainer width, no bias), as trained explainers in the
literature read vectors through a learned input projection. It starts as the fixed path
(``scale * W`` for cross, ``scale * I`` for self), so step 0 writes the same slot values,
and it is saved beside the adapter (`FILE` and `INFO`); ``--model_args peft=DIR`` reads
slots through it. The fitted map's intercept is kept as a fixed offset (not trained), so
the starting point is the fitted map exactly.

A slot's value for another scale than the one trained at is the projection times the
ratio of the two scales, as the fixed path scales linearly too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from harness_plugins.errors import IntrospectError

FILE = "projections.safetensors"
INFO = "projections.json"


def layer_name(layer: int | None) -> str:
    """A projection's name: its subject layer, or 'none' for vectors without one."""
    return "none" if layer is None else str(int(layer))


class SlotProjections(torch.nn.Module):
    """One bias-free linear map per subject layer, and the fixed offset kept from the map."""

    def __init__(self, layers: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.info = {name: dict(entry) for name, entry in layers.items()}
        self.maps = torch.nn.ModuleDict(
            {
                name: torch.nn.Linear(entry["subject_width"], entry["explainer_width"], bias=False)
                for name, entry in layers.items()
            }
        )
        for name, entry in layers.items():
            self.register_buffer(f"offset_{name}", torch.zeros(entry["explainer_width"]))
        self.used = {"learned": 0}
        """How many slot vectors went through a projection (for the results record)."""

    # ------------------------------------------------------------------ building

    @classmethod
    def initial(cls, sources: Iterable[tuple[Any, int | None, float, Any]]) -> SlotProjections:
        """Projections that reproduce the fixed path for every layer the sources name.

        ``sources``: (subject vector, subject layer, scale, mapper) of the training slots,
        ``mapper`` None for self-explanation, else the cross-model mapper.
        """
        first: dict[str, tuple[int, int | None, float, Any]] = {}
        for vector, layer, scale, mapper in sources:
            first.setdefault(
                layer_name(layer), (int(vector.shape[-1]), layer, float(scale), mapper)
            )
        layers: dict[str, dict[str, Any]] = {}
        weights: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, (width, layer, scale, mapper) in first.items():
            if mapper is None:
                weight, offset, init = torch.eye(width), torch.zeros(width), "identity"
            elif hasattr(mapper, "map_for") and layer is not None:
                fitted = mapper.map_for(int(layer))
                weight, offset, init = fitted.weight.T.float(), fitted.bias.float(), "fitted_map"
            else:
                raise IntrospectError(
                    "learned projections start from the fitted cross-model map, which needs the "
                    "subject layer of every slot; train with --learn_projection false"
                )
            layers[name] = {
                "subject_width": width,
                "explainer_width": int(weight.shape[0]),
                "scale": scale,
                "init": init,
            }
            weights[name] = (scale * weight, scale * offset)
        projections = cls(layers)
        with torch.no_grad():
            for name, (weight, offset) in weights.items():
                projections.maps[name].weight.copy_(weight)
                getattr(projections, f"offset_{name}").copy_(offset)
        return projections

    # ------------------------------------------------------------------ reading slots

    def project(self, vector: Any, layer: int | None, scale: float) -> torch.Tensor:
        """The slot value of a subject vector read at ``layer`` and scaled by ``scale``."""
        name = layer_name(layer)
        if name not in self.maps:
            trained = ", ".join(sorted(self.maps)) or "none"
            raise IntrospectError(
                f"the adapter's learned projections cover subject layers {trained}, not {name}: "
                "evaluate at those layers, or use an adapter trained with --learn_projection false"
            )
        linear = self.maps[name]
        vector = torch.as_tensor(vector).to(linear.weight)
        if vector.shape[-1] != linear.in_features:
            raise IntrospectError(
                f"the adapter's learned projection for subject layer {name} reads vectors of "
                f"width {linear.in_features}, got {vector.shape[-1]}: was it trained on "
                "another subject?"
            )
        ratio = float(scale) / float(self.info[name]["scale"] or 1.0)
        return ratio * (linear(vector) + getattr(self, f"offset_{name}"))

    def slot_value(self, key: str) -> torch.Tensor:
        """The value written at the slot ``key`` names (see `vectors.source`)."""
        from harness_plugins.prompts import vectors

        vector, layer, scale = vectors.source(key)
        self.used["learned"] += 1
        with torch.no_grad():
            return self.project(vector, layer, scale).detach().float().cpu()

    # ------------------------------------------------------------------ files

    def save(self, folder: str | Path, **about: Any) -> None:
        """``projections.safetensors`` and ``projections.json`` (layers, widths, init) in ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        tensors = {}
        for name in self.maps:
            tensors[f"{name}.weight"] = self.maps[name].weight.detach().float().cpu().contiguous()
            tensors[f"{name}.offset"] = getattr(self, f"offset_{name}").detach().float().cpu()
        save_file(tensors, str(folder / FILE))
        info = {"learned": True, "layers": self.info, **about}
        (folder / INFO).write_text(json.dumps(info, indent=2, default=str))


def load_projections(folder: str | Path | None) -> SlotProjections | None:
    """The learned projections saved with an adapter; None when it has none (fixed map)."""
    if folder is None or not (Path(folder) / FILE).is_file():
        return None
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        info = json.loads((folder / INFO).read_text())
        layers = info["layers"]
    except (OSError, ValueError, KeyError) as error:
        raise IntrospectError(
            f"{folder / FILE} has no readable {INFO} beside it ({error}); retrain the adapter "
            "or delete the projection files to use the fixed map"
        ) from None
    projections = SlotProjections(layers)
    tensors = load_file(str(folder / FILE))
    with torch.no_grad():
        for name in layers:
            projections.maps[name].weight.copy_(tensors[f"{name}.weight"])
            getattr(projections, f"offset_{name}").copy_(tensors[f"{name}.offset"])
    return projections.eval()


def projection_kind(adapter: str | Path | None) -> str:
    """What reads the slots for this adapter: ``learned`` or ``fixed`` (the map, or scale * I)."""
    return "learned" if adapter and (Path(adapter) / FILE).is_file() else "fixed"
