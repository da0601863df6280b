"""Training the learned projections (`harness_plugins.prompts.projections`) with the adapter.

The projections join the model as a submodule before the optimizer is built, so the
Trainer trains them with the LoRA weights (same learning rate, same schedule); the slot
trainer asks them for every slot's value. They are saved into each checkpoint (for
``--resume``) and, at the end, beside the adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from harness_plugins.prompts import vectors
from harness_plugins.prompts.projections import FILE, SlotProjections, load_projections

MODULE = "introspect_projections"


class ProjectionTraining(TrainerCallback):
    """A `train_lora` addon: trains ``projections``; ``about`` goes into projections.json."""

    def __init__(self, projections: SlotProjections, **about: Any) -> None:
        self.projections = projections
        self.about = about

    def attach(self, trainer: Any, tokenizer: Any, checkpoint: Path | None) -> None:
        if checkpoint is not None and (Path(checkpoint) / FILE).is_file():
            self.projections.load_state_dict(load_projections(checkpoint).state_dict())
        device = next(trainer.model.parameters()).device
        self.projections.to(device).train()
        trainer.model.add_module(MODULE, self.projections)
        trainer.slot_values = self.values

    def values(self, keys: list[str]) -> Any:
        """The slot values of a batch, through the projections (gradients flow to them)."""
        import torch

        return torch.stack([self.projections.project(*vectors.source(key)) for key in keys])

    def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            self.projections.save(folder, **self.about)

    def save(self, folder: Path) -> dict[str, Any]:
        self.projections.save(folder, **self.about)
        return {
            "projection": {
                "kind": "learned",
                "file": FILE,
                "layers": {name: dict(info) for name, info in self.projections.info.items()},
            }
        }
