"""Checks of weight files a user hands in (PEFT adapters, SAEs), before any work uses them.

A file that cannot be read, a config of the wrong shape, or weights holding NaN or
infinity would otherwise surface as a traceback deep in a load, or worse as a run that
finishes with every metric 0; each is one `IntrospectError` naming the file and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ground_truth.errors import IntrospectError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def first_non_finite(tensors: Mapping[str, Any]) -> str | None:
    """The name of the first floating-point tensor holding NaN or infinity, else None."""
    import torch

    for name, tensor in sorted(tensors.items()):
        if torch.is_tensor(tensor) and tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                return name
    return None


def read_safetensors(file: Path, what: str) -> dict[str, Any]:
    """Every tensor of ``file``; an unreadable or non-finite file is one error."""
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(file), device="cpu")
    except Exception as error:  # SafetensorError, OSError, a truncated header
        raise IntrospectError(
            f"{what} {file} cannot be read ({type(error).__name__}: {error}); the file is "
            "corrupt or not safetensors: write it again or download it again"
        ) from None
    bad = first_non_finite(tensors)
    if bad is not None:
        raise IntrospectError(
            f"{what} {file}: tensor {bad!r} holds NaN or infinite values; every result "
            "from it would be meaningless: retrain it or use another checkpoint"
        )
    return tensors


def check_adapter_folder(path: Path) -> None:
    """A local PEFT adapter folder: a readable config and finite, readable weights."""
    from ground_truth.untrusted import UntrustedError, read_json

    config_file = path / ADAPTER_CONFIG
    try:
        config = read_json(config_file)
    except (OSError, UntrustedError) as error:
        raise IntrospectError(
            f"PEFT adapter config {config_file} {error}; pass the folder that "
            "PeftModel.save_pretrained wrote"
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("peft_type"), str):
        raise IntrospectError(
            f"PEFT adapter config {config_file} is not a PEFT config (no peft_type); pass "
            "the folder that PeftModel.save_pretrained wrote"
        )
    for name in ADAPTER_WEIGHTS:
        file = path / name
        if not file.is_file():
            continue
        if name.endswith(".safetensors"):
            read_safetensors(file, "PEFT adapter weights")
        else:
            _check_torch_file(file)
        return
    raise IntrospectError(
        f"PEFT adapter folder {path} has no {' or '.join(ADAPTER_WEIGHTS)}; pass the folder "
        "that PeftModel.save_pretrained wrote"
    )


def _check_torch_file(file: Path) -> None:
    import torch

    try:
        tensors = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise IntrospectError(
            f"PEFT adapter weights {file} cannot be read ({type(error).__name__}); the "
            "file is corrupt: write it again"
        ) from None
    bad = first_non_finite(tensors) if isinstance(tensors, dict) else None
    if bad is not None:
        raise IntrospectError(
            f"PEFT adapter weights {file}: tensor {bad!r} holds NaN or infinite values; "
            "retrain it or use another checkpoint"
        )


def adapter_fit_error(peft: str, subject: str, error: Exception) -> IntrospectError:
    """An adapter that PEFT cannot apply to the subject (another architecture, other
    shapes) as one line, instead of PEFT's traceback."""
    reason = " ".join(str(error).split())
    if len(reason) > 300:
        reason = reason[:300] + "..."
    return IntrospectError(
        f"PEFT adapter {peft} does not fit the subject {subject} ({type(error).__name__}: "
        f"{reason}); pass an adapter trained on this model"
    )
