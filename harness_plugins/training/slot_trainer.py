"""The Trainer of `train_lora`: vector slots written over the embeddings, the answer-only
loss (`answer_loss`), and the work and time of every step counted for the manifest."""

from __future__ import annotations

import statistics
import time
from typing import Any

from transformers import TrainerCallback

from harness_plugins.training.answer_loss import Work, answer_only_loss, slots_written


class StepClock(TrainerCallback):
    """Wall seconds of each optimizer step (the first one, which warms up, included)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.seconds.append(time.perf_counter() - self._started)

    def summary(self, work: Work) -> dict[str, Any]:
        """The counted work with step timings; the median leaves the first step out."""
        timed = self.seconds[1:] or self.seconds
        median = statistics.median(timed) if timed else None

        def rate(count: int) -> float | None:  # per optimizer step, at the median step time
            return round(count / len(self.seconds) / median, 1) if median else None

        return {
            **vars(work),
            "step_seconds": [round(s, 3) for s in self.seconds],
            "median_step_seconds": median,
            "tokens_per_second": rate(work.tokens),
            "answer_tokens_per_second": rate(work.answer_tokens),
        }


class LengthGroupedBatches:
    """A sampler: each epoch a fresh shuffle, cut into blocks of ``span`` batches (the whole
    set when smaller), each block sorted by length and cut into batches, and the batches
    shuffled. Rows of a batch are then of similar length: little padding, every row once
    an epoch. (The Trainer's own length-grouped sampler sorts blocks of at most a quarter
    of the set, so on a few hundred rows it hardly groups.)"""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, span: int = 50) -> None:
        self.lengths, self.batch_size, self.seed, self.span = lengths, batch_size, seed, span
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Any:
        import random

        draw = random.Random(f"{self.seed}:{self.epoch}")
        order = list(range(len(self.lengths)))
        draw.shuffle(order)
        block, batches = self.batch_size * self.span, []
        for start in range(0, len(order), block):
            rows = sorted(order[start : start + block], key=lambda i: -self.lengths[i])
            batches += [rows[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        draw.shuffle(batches)
        return iter([row for batch in batches for row in batch])


def slot_trainer() -> type:
    """A Trainer that writes each batch's vectors over the embeddings at their slots, and
    computes logits only at the positions that predict a reply token (`answer_loss`)."""
    from transformers import Trainer

    class SlotTrainer(Trainer):
        full_logits = False
        """True: the model's own loss, over logits at every position (same value, more memory)."""
        trim_tail = False
        share_prefix = False
        """The `answer_only_loss` cuts (same loss, less work); `train_lora` turns them on."""
        slot_values: Any = None
        """Set: the vectors at the slots come from it (slot keys -> values; learned projections)."""
        work: Work | None = None
        """Set: every loss computed in training mode adds its work here."""
        group_by_length = False
        """True: training batches of rows of similar length (`LengthGroupedBatches`)."""

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if not self.group_by_length or "length" not in dataset.column_names:
                return super()._get_train_sampler(train_dataset)
            size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedBatches(list(dataset["length"]), size, self.args.seed)

        def _answer_only(self, return_outputs: bool) -> bool:
            return not (
                self.full_logits
                or return_outputs
                or self.label_smoother is not None
                or self.compute_loss_func is not None
                or self.accelerator.num_processes > 1
            )

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            where = inputs.pop("slot_positions")
            values = inputs.pop("slot_vectors")
            keys = inputs.pop("slot_keys", [])
            if self.slot_values is not None and keys:
                values = self.slot_values(keys)
            work = self.work if model.training else None
            if self._answer_only(return_outputs) and "labels" in inputs:
                # divided by the batch's label count exactly when the Trainer counts on it
                count = num_items_in_batch if self.model_accepts_loss_kwargs else None
                return answer_only_loss(
                    model,
                    inputs,
                    count,
                    slots=(where, values),
                    trim_tail=self.trim_tail,
                    share_prefix=self.share_prefix,
                    work=work,
                )
            if work is not None and "attention_mask" in inputs:
                mask = inputs["attention_mask"]
                work.add_batch(mask, inputs.get("labels", mask.new_zeros(0)))
                work.add_forward(mask, mask.numel())
            with slots_written(model, where, values):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return SlotTrainer
