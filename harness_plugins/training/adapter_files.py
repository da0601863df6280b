"""The files `train_lora` leaves beside an adapter: its manifest and the base it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "introspect_training.json"

__all__ = ["MANIFEST", "name_base_model", "read_manifest"]


def name_base_model(adapter: Path, name: str) -> None:
    """Write the base as the user named it (alias, Hub id or folder) into adapter_config.json.

    PEFT records the path it loaded from, a cache folder for an alias; the alias (or Hub
    id) loads the same base on another machine.
    """
    config_path = Path(adapter) / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))


def read_manifest(adapter: str | Path) -> dict[str, Any]:
    """The manifest `train_lora` wrote beside an adapter ({} when there is none)."""
    path = Path(adapter) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
