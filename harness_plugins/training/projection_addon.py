"""Training the learned projections (`harness_plugins.prompts.projections`) with the adapter.

The projections join the model as a submodule before the optimizer is built, so the
Trainer trains them with the LoRA weights (same schedule; by default the same learning
rate, or their own: a projection starts at ``scale * I`` or the fitted map, far from a
decoder, and at a LoRA rate it barely moves in a few hundred steps); the slot trainer
asks them for every slot's value. They are saved into each checkpoint (for
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

    def __init__(
        self,
        projections: SlotProjections,
        learning_rate: float | None = None,
        warm_start: Any = None,
        **about: Any,
    ) -> None:
        self.projections = projections
        self.learning_rate = learning_rate
        self.warm_start = warm_start
        """None, or (examples, seed): fit the projections to the answers first
        (`harness_plugins.training.answer_probe`)."""
        self.about = about

    def attach(self, trainer: Any, tokenizer: Any, checkpoint: Path | None) -> None:
        if checkpoint is not None and (Path(checkpoint) / FILE).is_file():
            self.projections.load_state_dict(load_projections(checkpoint).state_dict())
        elif self.warm_start is not None:
            from harness_plugins.training.answer_probe import fit_answer_probe

            examples, seed = self.warm_start
            embedding = trainer.model.get_input_embeddings()
            fit_answer_probe(self.projections, examples, tokenizer, embedding, seed)
        device = next(trainer.model.parameters()).device
        self.projections.to(device).train()
        trainer.model.add_module(MODULE, self.projections)
        trainer.slot_values = self.values
        if self.learning_rate is not None:
            self._own_learning_rate(trainer)

    def _own_learning_rate(self, trainer: Any) -> None:
        """The projections in their own optimizer group at ``learning_rate`` (no weight
        decay); the scheduler then scales every group alike."""
        create = trainer.create_optimizer

        def create_optimizer(*args: Any, **kwargs: Any) -> Any:
            optimizer = create(*args, **kwargs)
            own = list(self.projections.parameters())
            ids = {id(p) for p in own}
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in ids]
            optimizer.param_groups = [g for g in optimizer.param_groups if g["params"]]
            optimizer.add_param_group(
                {"params": own, "lr": self.learning_rate, "weight_decay": 0.0}
            )
            return optimizer

        trainer.create_optimizer = create_optimizer

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
