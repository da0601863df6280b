"""``introspect sae train``: a tiny subject, a few steps, a folder the sae source reads."""

from __future__ import annotations

import json

import torch
from conftest import run_cli

from ground_truth.sae_format import load_sae
from harness_plugins.training.sae import SaeTrainingConfig, fit


def test_sae_train_saves_a_loadable_sae_whose_loss_fell(tiny_llama, tmp_path):
    out = tmp_path / "sae"
    done = run_cli(
        "introspect",
        "sae",
        "train",
        "--subject",
        str(tiny_llama),
        "--layer",
        "1",
        "--width",
        "64",
        "--steps",
        "150",
        "--batch_size",
        "128",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sae = load_sae(out)
    assert (sae.d_in, sae.d_sae) == (32, 64)
    assert sae.cfg["hook_name"] == "blocks.1.hook_resid_post" and sae.cfg["hook_layer"] == 1
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 150
    assert record["final_loss"] < record["first_loss"]
    assert record["held_out_mse_after"] < record["held_out_mse_before"]
    assert "introspect_features" in done.stdout


def test_sae_train_refuses_a_layer_the_subject_lacks_before_loading(tiny_llama, tmp_path):
    done = run_cli(
        "introspect", "sae", "train", "--subject", str(tiny_llama), "--layer", "7", "--width", "8"
    )
    assert done.returncode == 2
    assert "layer 7 is out of range" in done.stderr


def test_saved_weights_read_raw_activations_as_the_scaled_training_did():
    """The input scale folds into the weights: the saved SAE reconstructs raw inputs."""
    torch.manual_seed(0)
    basis = torch.randn(6, 16) * 40  # large raw norms, like a real residual stream
    codes = torch.relu(torch.randn(2000, 6))
    activations = codes @ basis
    config = SaeTrainingConfig(layer=0, width=12, steps=400, batch_size=256, l1=0.5)
    weights, record = fit(activations, config, progress=False)
    from ground_truth.sae_format import Sae

    sae = Sae(**weights, cfg={"hook_name": "blocks.0.hook_resid_post"})
    x = activations[:200]
    error = (sae.decode(sae.encode(x)) - x).pow(2).sum(-1).mean()
    variance = (x - x.mean(0)).pow(2).sum(-1).mean()
    assert float(error / variance) < 0.5
    assert record["held_out_mse_after"] < record["held_out_mse_before"]
