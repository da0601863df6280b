"""Affine maps from one model's residual stream to another's, for cross-model explanation.

When the explainer is not the subject (Patchscopes across models; an explainer whose
width differs from the subject's), a vector read from the subject at layer ``l`` means
nothing in the explainer's space until it is mapped there. The map is affine and fitted
by (ridge) least squares on paired hidden states: both models read the same texts, and
a subject token is paired with an explainer token when both end at the same character
of the text. Token indices would not do: the two tokenizers split text differently.

The fit reports its held-out R^2 (variance of the explainer's states explained, averaged
over its dimensions, on 20% of the paired positions kept out of the fit), so a task can
say how much of a cross-model result rests on a poor map. Fitted maps are cached on disk
by `MapStore`, keyed by both models' fingerprints, the layers and the texts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ground_truth.errors import IntrospectError
from ground_truth.least_squares import r_squared, solve_affine
from ground_truth.primitive import Read
from ground_truth.sites import site
from ground_truth.store import build_once, cache_root

MAP_FILE = "map.safetensors"
MANIFEST = "manifest.json"
# Bump when the fit changes, so maps fitted the old way are not reused.
FORMAT_VERSION = 1
MIN_PAIRS = 50
HELD_OUT_FRACTION = 0.2


@dataclass
class AffineMap:
    """``target ≈ source @ weight + bias``, from source layer to target layer."""

    weight: torch.Tensor  # [d_source, d_target]
    bias: torch.Tensor  # [d_target]
    source_layer: int
    target_layer: int
    r2: float  # held-out R^2, averaged over target dimensions
    pairs: int  # paired positions the map was fitted on
    held_out: int = 0  # paired positions kept out of the fit to measure r2

    @property
    def d_source(self) -> int:
        return int(self.weight.shape[0])

    @property
    def d_target(self) -> int:
        return int(self.weight.shape[1])

    def apply(self, vector: torch.Tensor) -> torch.Tensor:
        """Map one vector ``[d_source]`` (or rows ``[..., d_source]``) to the target space."""
        vector = torch.as_tensor(vector)
        if vector.shape[-1] != self.d_source:
            raise IntrospectError(
                f"cross-model map: vector of width {vector.shape[-1]} given to a map from "
                f"width {self.d_source} (subject layer {self.source_layer})"
            )
        dtype = vector.dtype if vector.is_floating_point() else torch.float32
        weight = self.weight.to(device=vector.device, dtype=dtype)
        bias = self.bias.to(device=vector.device, dtype=dtype)
        return vector.to(dtype) @ weight + bias


# ---------------------------------------------------------------- alignment


def require_fast_tokenizer(tokenizer: Any) -> None:
    """Offsets (what aligns two tokenizations) come only from fast tokenizers: say so early."""
    if not getattr(tokenizer, "is_fast", False):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise IntrospectError(
            f"cross-model maps need a fast tokenizer (offset mappings) but {name!r} has a slow "
            "one; install `tokenizers` or use a model that ships a tokenizer.json"
        )


def _encode(text: str, tokenizer: Any) -> tuple[list[int], dict[int, int]]:
    """Token ids as the model reads them, and character end offset -> last token ending there.

    Special tokens, position 0 and empty spans are left out of the offsets. Where several
    tokens end at the same character (the bytes of one character split over tokens), the
    last one is kept: only it has seen the whole character.
    """
    require_fast_tokenizer(tokenizer)
    encoding = tokenizer(
        text,
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    ids = list(encoding["input_ids"])
    ends: dict[int, int] = {}
    for index, ((start, end), special) in enumerate(
        zip(encoding["offset_mapping"], encoding["special_tokens_mask"], strict=True)
    ):
        if index == 0 or special or end <= start:
            continue
        ends[int(end)] = index
    return ids, ends


def _pair(source_ends: dict[int, int], target_ends: dict[int, int]) -> list[tuple[int, int]]:
    return [
        (source_ends[end], target_ends[end])
        for end in sorted(source_ends.keys() & target_ends.keys())
    ]


def aligned_positions(
    text: str, source_tokenizer: Any, target_tokenizer: Any
) -> list[tuple[int, int]]:
    """(source index, target index) of the tokens of ``text`` that end at the same character.

    Both models have then read exactly the same text, so their hidden states there are
    about the same thing. Indices count the tokens each tokenizer produces for ``text``
    with its special tokens; special tokens and index 0 are never paired.
    """
    _, source_ends = _encode(text, source_tokenizer)
    _, target_ends = _encode(text, target_tokenizer)
    return _pair(source_ends, target_ends)


def _hidden_states(
    backend: Any, sequences: list[list[int]], layer: int, description: str
) -> list[torch.Tensor]:
    name = site("resid_post", layer)
    reads = [Read(name, row, None) for row in range(len(sequences))]
    return backend.forward(sequences, reads=reads, description=description).reads


StatesReader = Callable[[], tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]]
"""() -> (source states, target states) at the map's layers, one tensor per shared text
(every text, in order, tokenized as `_encode` does), from wherever they are kept."""


def fit_affine_map(
    source_backend: Any,
    target_backend: Any,
    source_tokenizer: Any,
    target_tokenizer: Any,
    texts: Sequence[str],
    source_layer: int,
    target_layer: int,
    *,
    ridge: float = 1e-3,
    seed: int = 0,
    states: StatesReader | None = None,
) -> AffineMap:
    """Fit source ``blocks.{source_layer}.hook_resid_post`` -> target's at ``target_layer``.

    Positions are paired by `aligned_positions`; 20% of the pairs (chosen with ``seed``)
    are held out for R^2. The states come from ``states()`` (e.g. read once for every
    layer, `ground_truth.text_states`) or, without it, from one batched forward of the
    texts through each model at these layers.
    """
    require_fast_tokenizer(source_tokenizer)
    require_fast_tokenizer(target_tokenizer)
    source_ids: list[list[int]] = []
    target_ids: list[list[int]] = []
    pairs: list[list[tuple[int, int]]] = []
    kept: list[int] = []
    for index, text in enumerate(texts):
        s_ids, s_ends = _encode(text, source_tokenizer)
        t_ids, t_ends = _encode(text, target_tokenizer)
        aligned = _pair(s_ends, t_ends)
        if aligned:
            source_ids.append(s_ids)
            target_ids.append(t_ids)
            pairs.append(aligned)
            kept.append(index)
    total = sum(len(p) for p in pairs)
    if total < MIN_PAIRS:
        raise IntrospectError(
            f"cross-model map: the shared texts do not align: {total} positions end at the same "
            f"character in both tokenizations of {len(texts)} texts, {MIN_PAIRS} are needed"
        )
    if states is not None:
        every_source, every_target = states()
        source_states = [every_source[k] for k in kept]
        target_states = [every_target[k] for k in kept]
    else:
        source_states = _hidden_states(
            source_backend, source_ids, source_layer, "cross-model map: subject states"
        )
        target_states = _hidden_states(
            target_backend, target_ids, target_layer, "cross-model map: explainer states"
        )
    x = torch.cat(
        [states_[[i for i, _ in p]] for states_, p in zip(source_states, pairs, strict=True)]
    )
    y = torch.cat(
        [states_[[j for _, j in p]] for states_, p in zip(target_states, pairs, strict=True)]
    )
    del source_states, target_states
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(total, generator=generator)
    held = max(1, round(HELD_OUT_FRACTION * total))
    test, train = order[:held], order[held:]
    weight, bias = solve_affine(x[train], y[train], ridge)
    r2 = r_squared(x[test].double() @ weight.double() + bias.double(), y[test])
    return AffineMap(
        weight=weight,
        bias=bias,
        source_layer=int(source_layer),
        target_layer=int(target_layer),
        r2=r2,
        pairs=int(train.numel()),
        held_out=int(test.numel()),
    )


def corresponding_layer(layer: int, source_layers: int, target_layers: int) -> int:
    """The target layer at the same relative depth: ``round(layer * (T-1) / (S-1))``.

    Halves round up; a one-layer source maps to layer 0.
    """
    if not 0 <= layer < source_layers:
        raise IntrospectError(f"layer {layer} out of range 0..{source_layers - 1}")
    if source_layers == 1:
        return 0
    numerator = layer * (target_layers - 1)
    return (2 * numerator + source_layers - 1) // (2 * (source_layers - 1))


# ---------------------------------------------------------------- cache


def _describe(loaded: Any) -> str | None:
    spec = getattr(loaded, "spec", None)
    return spec.describe() if spec is not None else None


def texts_digest(texts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(texts)).encode()).hexdigest()


class MapStore:
    """Fitted maps under ``<cache>/maps/<key>``: ``map.safetensors`` and ``manifest.json``.

    Keyed by what determines a map (both fingerprints, both layers, the texts, the fit's
    settings), written under a lock into a folder that appears only when complete, and
    stored as safetensors, never pickle: a cache folder may be shared.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root() / "maps"

    def path(
        self,
        source_fingerprint: str,
        target_fingerprint: str,
        source_layer: int,
        target_layer: int,
        texts: Sequence[str],
        ridge: float = 1e-3,
        seed: int = 0,
    ) -> Path:
        body = json.dumps(
            {
                "format": FORMAT_VERSION,
                "source": source_fingerprint,
                "target": target_fingerprint,
                "layers": [int(source_layer), int(target_layer)],
                "texts": texts_digest(texts),
                "ridge": ridge,
                "seed": seed,
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(body.encode()).hexdigest()[:16]
        name = f"{source_fingerprint[:8]}-L{source_layer}-{target_fingerprint[:8]}-L{target_layer}-{digest}"
        return self.root / name

    @staticmethod
    def load(folder: Path) -> AffineMap | None:
        """The map in ``folder``, or None when there is no complete entry."""
        from safetensors.torch import load_file

        if not (folder / MANIFEST).is_file() or not (folder / MAP_FILE).is_file():
            return None
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            tensors = load_file(str(folder / MAP_FILE))
        except (OSError, ValueError):
            return None
        return AffineMap(
            weight=tensors["weight"],
            bias=tensors["bias"],
            source_layer=int(manifest["source_layer"]),
            target_layer=int(manifest["target_layer"]),
            r2=float(manifest["r2"]) if manifest["r2"] is not None else math.nan,
            pairs=int(manifest["pairs"]),
            held_out=int(manifest.get("held_out", 0)),
        )

    def get_or_fit(
        self,
        source: Any,
        target: Any,
        source_backend: Any,
        target_backend: Any,
        texts: Sequence[str],
        source_layer: int,
        target_layer: int,
        *,
        ridge: float = 1e-3,
        seed: int = 0,
        states: StatesReader | None = None,
    ) -> tuple[AffineMap, bool]:
        """(map, built_now): the cached map for these models and layers, fitting it once."""
        from safetensors.torch import save_file

        texts = list(texts)
        folder = self.path(
            source.fingerprint,
            target.fingerprint,
            source_layer,
            target_layer,
            texts,
            ridge,
            seed,
        )

        def fit(staging: Path) -> None:
            fitted = fit_affine_map(
                source_backend,
                target_backend,
                source.tokenizer,
                target.tokenizer,
                texts,
                source_layer,
                target_layer,
                ridge=ridge,
                seed=seed,
                states=states,
            )
            save_file(
                {"weight": fitted.weight.contiguous(), "bias": fitted.bias.contiguous()},
                str(staging / MAP_FILE),
            )
            manifest = {
                "format": FORMAT_VERSION,
                "source_fingerprint": source.fingerprint,
                "target_fingerprint": target.fingerprint,
                "source_model": _describe(source),
                "target_model": _describe(target),
                "source_layer": fitted.source_layer,
                "target_layer": fitted.target_layer,
                "d_source": fitted.d_source,
                "d_target": fitted.d_target,
                "r2": None if math.isnan(fitted.r2) else fitted.r2,
                "pairs": fitted.pairs,
                "held_out": fitted.held_out,
                "texts": len(texts),
                "texts_digest": texts_digest(texts),
                "ridge": ridge,
                "seed": seed,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))

        return build_once(folder, self.load, fit)
