"""A small sparse-autoencoder trainer, so the SAE path runs offline on any subject.

ReLU SAE (sae-lens' ``standard`` architecture), loss = squared reconstruction error +
``l1`` x sum of feature activations weighted by decoder-row norms, Adam. Activations are
the subject's residual stream at one block, read through the backend primitive over the
corpus `harness_plugins.banks.sae_corpus` serves (built-in sentences by default; the
first token of every window, an attention sink with an outsized norm, is left out).
Inputs are scaled to mean norm sqrt(d_in) while training and the scale is folded back
into the saved weights, so the saved SAE reads raw residuals. Saved in sae-lens' layout
(`ground_truth.sae_format`) with ``training.json`` beside it: losses, time, L0.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError


@dataclass(frozen=True)
class SaeTrainingConfig:
    """Hyperparameters of `train_sae`; defaults suit the built-in corpus and a 135M subject."""

    layer: int
    width: int
    steps: int = 3000
    batch_size: int = 512
    learning_rate: float = 1e-3
    l1: float = 5.0
    window: int = 64
    corpus: str | None = None
    seed: int = 0
    max_seconds: float | None = None


def _activations(subject: Any, backend: Any, at: str, config: SaeTrainingConfig) -> Any:
    import torch

    from harness_plugins.banks.sae_corpus import corpus_texts, read_windows, token_windows

    windows = token_windows(corpus_texts(config.corpus), subject.tokenizer, config.window)
    residuals = read_windows(subject, backend, at, windows)
    rows = [r[1:] for r in residuals if len(r) > 1]
    if not rows:
        raise IntrospectError("sae train: the corpus has no tokens beyond the first of each window")
    return torch.cat(rows).float()


def _loss(x: Any, params: dict[str, Any], l1: float) -> tuple[Any, Any, Any]:
    """(total loss, mean squared error per token, feature activations)."""
    f = ((x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]).clamp_min(0)
    x_hat = f @ params["W_dec"] + params["b_dec"]
    mse = (x_hat - x).pow(2).sum(-1).mean()
    sparsity = (f * params["W_dec"].norm(dim=1)).sum(-1).mean()
    return mse + l1 * sparsity, mse, f


def fit(activations: Any, config: SaeTrainingConfig, progress: bool = True) -> tuple[dict, dict]:
    """(trained weights for raw inputs, record) from activations [tokens, d_in]."""
    import torch
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(config.seed)
    d_in = activations.shape[1]
    scale = float(d_in**0.5 / activations.norm(dim=-1).mean().clamp_min(1e-8))
    x_all = activations * scale
    held = max(1, len(x_all) // 10)
    order = torch.randperm(len(x_all), generator=generator)
    test, train = x_all[order[:held]], x_all[order[held:]]
    decoder = torch.randn(config.width, d_in, generator=generator)
    decoder = decoder / decoder.norm(dim=1, keepdim=True) * 0.1
    params = {
        "W_enc": decoder.T.clone().requires_grad_(),
        "W_dec": decoder.clone().requires_grad_(),
        "b_enc": torch.zeros(config.width, requires_grad=True),
        "b_dec": train.median(0).values.clone().requires_grad_(),
    }
    optimiser = torch.optim.Adam(params.values(), lr=config.learning_rate)
    with torch.no_grad():
        first = float(_loss(test, params, config.l1)[1])
    start, losses = time.monotonic(), []
    bar = tqdm(range(config.steps), desc="sae train", disable=not progress)
    for step in bar:
        batch = train[torch.randint(len(train), (config.batch_size,), generator=generator)]
        loss, mse, _ = _loss(batch, params, config.l1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}", mse=f"{mse.item():.3f}")
        if config.max_seconds is not None and time.monotonic() - start > config.max_seconds:
            break
    seconds = time.monotonic() - start
    with torch.no_grad():
        _, mse, f = _loss(test, params, config.l1)
        variance = (test - test.mean(0)).pow(2).sum(-1).mean()
        record = {
            "steps": len(losses),
            "seconds": round(seconds, 1),
            "tokens": len(x_all),
            "held_out_mse_before": round(first, 5),
            "held_out_mse_after": round(float(mse), 5),
            "fraction_variance_unexplained": round(float(mse / variance), 5),
            "l0": round(float((f > 0).float().sum(-1).mean()), 2),
            "first_loss": round(losses[0], 5),
            "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 5),
            "input_scale": scale,
        }
        weights = {
            "W_enc": params["W_enc"].detach() * scale,
            "W_dec": params["W_dec"].detach() / scale,
            "b_enc": params["b_enc"].detach().clone(),
            "b_dec": params["b_dec"].detach() / scale,
        }
    return weights, record


def train_sae(
    subject_name: str, out: str | Path, config: SaeTrainingConfig, progress: bool = True
) -> dict[str, Any]:
    """Train an SAE on ``subject_name``'s residual stream after block ``config.layer``; save it."""
    from ground_truth.backends.hf import HFBackend
    from ground_truth.features import resolve_layer
    from ground_truth.sae_format import Sae, save_sae
    from ground_truth.sites import site
    from ground_truth.subject import ModelSpec, layer_count, load_model
    from harness_plugins.registry import get_registry

    if config.width < 1 or config.steps < 1 or config.batch_size < 1:
        raise IntrospectError("sae train: --width, --steps and --batch_size must be at least 1")
    aliases = get_registry().model_aliases
    spec = ModelSpec.from_arguments({"pretrained": subject_name})
    count = layer_count(spec, aliases)
    if count is not None:
        resolve_layer(config.layer, count)  # a bad layer fails before the weights load
    subject = load_model(spec, aliases)
    backend = HFBackend(subject, batch_size=16, progress=progress)
    layer = resolve_layer(config.layer, backend.n_layers)
    at = site("resid_post", layer)
    weights, record = fit(_activations(subject, backend, at, config), config, progress)
    cfg = {
        "architecture": "standard",
        "hook_name": at,
        "hook_layer": layer,
        "model_name": subject_name,
        "context_size": config.window,
        "dtype": "float32",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "trained_by": "introspect sae train",
    }
    folder = save_sae(out, Sae(**weights, cfg=cfg))
    record = {**record, "subject": subject_name, "config": asdict(config)}
    (folder / "training.json").write_text(json.dumps(record, indent=2))
    return record
