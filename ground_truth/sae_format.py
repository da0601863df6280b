"""Sparse autoencoders as sae-lens stores them: ``cfg.json`` plus ``sae_weights.safetensors``.

The folder layout is the one sae-lens writes and Gemma Scope conversions use: ``cfg.json``
(``d_in``, ``d_sae``, ``hook_name``, ``hook_layer``, ``apply_b_dec_to_input``, ...) and
``sae_weights.safetensors`` with ``W_enc`` [d_in, d_sae], ``W_dec`` [d_sae, d_in],
``b_enc`` [d_sae] and ``b_dec`` [d_in]. The format is read here directly with
``safetensors`` rather than through the ``sae-lens`` package: sae-lens 6.x requires
``transformer-lens<4`` and installing it would downgrade our pinned transformer-lens 4.3
(checked with ``pip install --dry-run sae-lens``). Only ReLU encoders (sae-lens'
``standard`` architecture) and JumpReLU ones (a ``threshold`` tensor) are understood.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground_truth.errors import IntrospectError
from ground_truth.sites import site

CONFIG = "cfg.json"
WEIGHTS = "sae_weights.safetensors"
_HOOK = re.compile(r"blocks\.(\d+)\.(hook_resid_post|hook_resid_pre|hook_mlp_out|mlp\.hook_post)")
# sae-lens hook names we read -> our site kinds (the same TransformerLens names)
_KINDS = {
    "hook_resid_post": "resid_post",
    "hook_resid_pre": "resid_pre",
    "mlp.hook_post": "mlp_post",
}


@dataclass
class Sae:
    """The weights and config of one SAE; `encode` gives feature activations."""

    W_enc: Any  # [d_in, d_sae]
    W_dec: Any  # [d_sae, d_in]
    b_enc: Any  # [d_sae]
    b_dec: Any  # [d_in]
    cfg: dict[str, Any] = field(default_factory=dict)
    threshold: Any = None  # JumpReLU only

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    def encode(self, x: Any) -> Any:
        """Feature activations [..., d_sae] of residuals ``x`` [..., d_in] (float32)."""
        x = x.float()
        if self.cfg.get("apply_b_dec_to_input", True):
            x = x - self.b_dec
        pre = x @ self.W_enc + self.b_enc
        if self.threshold is not None:
            return pre * (pre > self.threshold)
        return pre.clamp_min(0)

    def decode(self, f: Any) -> Any:
        return f @ self.W_dec + self.b_dec


def hook_site(hook_name: str, n_layers: int | None = None) -> tuple[str, int]:
    """(our site name, layer) for an sae-lens ``hook_name``, or one error naming what we read."""
    match = _HOOK.fullmatch(hook_name or "")
    if not match or match.group(2) not in _KINDS:
        raise IntrospectError(
            f"SAE hook {hook_name!r} cannot be read: the sae source reads SAEs trained on "
            "blocks.L.hook_resid_post, blocks.L.hook_resid_pre or blocks.L.mlp.hook_post"
        )
    layer = int(match.group(1))
    if n_layers is not None and not 0 <= layer < n_layers:
        raise IntrospectError(
            f"SAE hook {hook_name!r}: layer {layer} is outside the subject's 0..{n_layers - 1}"
        )
    return site(_KINDS[match.group(2)], layer), layer


def read_config(folder: str | Path) -> dict[str, Any]:
    """The SAE's ``cfg.json``, checked for what we need, without reading the weights (cheap)."""
    path = Path(folder).expanduser()
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise IntrospectError(
            f"SAE folder {str(path)!r} must hold {CONFIG} and {WEIGHTS} (the sae-lens layout); "
            "train one with `introspect sae train` or download one with sae-lens"
        )
    try:
        cfg = json.loads((path / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise IntrospectError(f"SAE config {path / CONFIG} is not valid JSON: {error}") from None
    if not isinstance(cfg, dict):
        raise IntrospectError(f"SAE config {path / CONFIG} is not a JSON object")
    missing = [k for k in ("d_in", "d_sae", "hook_name") if k not in cfg]
    if missing:
        raise IntrospectError(f"SAE config {path / CONFIG} lacks {', '.join(missing)}")
    for key in ("d_in", "d_sae"):
        if type(cfg[key]) is not int or cfg[key] < 1:
            raise IntrospectError(
                f"SAE config {path / CONFIG} has {key}={cfg[key]!r}, not a positive integer"
            )
    if not isinstance(cfg["hook_name"], str):
        raise IntrospectError(f"SAE config {path / CONFIG} has a hook_name that is not text")
    hook_site(cfg["hook_name"])
    _check_header(path / WEIGHTS)
    return cfg


def _check_header(file: Path) -> None:
    """Open the weights' header (cheap: no tensor is read): a corrupt file fails here,
    before any model loads."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            handle.keys()
    except Exception as error:  # SafetensorError, OSError
        raise IntrospectError(
            f"SAE weights {file} cannot be read ({type(error).__name__}: {error}); the file "
            "is corrupt or not safetensors: train it again or download it again"
        ) from None


def load_sae(folder: str | Path) -> Sae:
    """The SAE in ``folder``, with shapes checked against its config."""
    from ground_truth.weights_check import read_safetensors

    path = Path(folder).expanduser()
    cfg = read_config(path)
    tensors = read_safetensors(path / WEIGHTS, "SAE weights")  # readable, finite
    missing = [k for k in ("W_enc", "W_dec", "b_enc", "b_dec") if k not in tensors]
    if missing:
        raise IntrospectError(f"SAE weights {path / WEIGHTS} lack {', '.join(missing)}")
    d_in, d_sae = int(cfg["d_in"]), int(cfg["d_sae"])
    shapes = {
        "W_enc": (d_in, d_sae),
        "W_dec": (d_sae, d_in),
        "b_enc": (d_sae,),
        "b_dec": (d_in,),
    }
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise IntrospectError(
                f"SAE weights {path / WEIGHTS}: {name} has shape {tuple(tensors[name].shape)}, "
                f"cfg.json says {shape}"
            )
    return Sae(
        *(tensors[k].float() for k in ("W_enc", "W_dec", "b_enc", "b_dec")),
        cfg=cfg,
        threshold=tensors["threshold"].float() if "threshold" in tensors else None,
    )


def save_sae(folder: str | Path, sae: Sae) -> Path:
    """Write ``sae`` as sae-lens does (cfg.json with d_in/d_sae filled, safetensors)."""
    from safetensors.torch import save_file

    path = Path(folder).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    cfg = {**sae.cfg, "d_in": sae.d_in, "d_sae": sae.d_sae}
    cfg.setdefault("architecture", "standard" if sae.threshold is None else "jumprelu")
    cfg.setdefault("apply_b_dec_to_input", True)
    layer = re.match(r"blocks\.(\d+)\.", cfg.get("hook_name", ""))
    if "hook_layer" not in cfg and layer:
        cfg["hook_layer"] = int(layer.group(1))
    tensors = {
        k: getattr(sae, k).detach().float().contiguous().cpu()
        for k in ("W_enc", "W_dec", "b_enc", "b_dec")
    }
    if sae.threshold is not None:
        tensors["threshold"] = sae.threshold.detach().float().contiguous().cpu()
    save_file(tensors, str(path / WEIGHTS))
    (path / CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return path


def sae_digest(folder: str | Path) -> str:
    """SHA-256 of the SAE's weights and config: what its activations depend on."""
    path = Path(folder).expanduser()
    digest = hashlib.sha256()
    for name in (CONFIG, WEIGHTS):
        digest.update(name.encode())
        with open(path / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
