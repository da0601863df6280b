"""Shared fixtures: an isolated offline environment and tiny models built in the test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import save_tiny_model

# Nothing may reach a hub; every cache and W&B run lives in the test's own folder.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("DISABLE_MULTIPROC", "1")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh introspect cache for the session (kept across tests so models convert once)."""
    root = tmp_path_factory.mktemp("introspect-cache")
    os.environ["INTROSPECT_CACHE_DIR"] = str(root)
    os.environ["HF_DATASETS_CACHE"] = str(root / "hf-datasets")
    os.environ["WANDB_DIR"] = str(root / "wandb")
    return root


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", "llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GPT-2 (learned absolute positions) without a chat template: the plain prompt path."""
    return save_tiny_model(
        tmp_path_factory.mktemp("models") / "tiny-gpt2", "gpt2", chat_template=False
    )


@pytest.fixture(scope="session")
def tiny_llama_other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second Llama with other weights: a different subject for cross-explanation."""
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama-other", "llama", seed=1)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run a console command of this environment (lm_eval, introspect) in a subprocess."""
    executable = Path(sys.executable).parent / args[0]
    return subprocess.run(
        [str(executable), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def table():
    """An active vector table for the test (prompts' ``<rep>`` slots land in it)."""
    from harness_plugins.prompts import vectors

    table = vectors.VectorTable()
    with table.active():
        yield table
    table.clear()
