"""Learning you can watch: held-out loss and the type's metric every N training steps.

A `LearningCurve` is a Trainer callback. Every ``every`` optimizer steps (and before the
first and after the last) it puts the model in eval mode and, on a held-out slice of the
*train* partition (never the test partition), computes

* the held-out loss: the training loss (the same slot writes, the same answer-only
  cross-entropy) over the slice, weighted by learned tokens;
* the type's metrics: greedy answers of the model being trained, short and batched,
  scored by the explanation type's own ``score_results``, the scorer lm-eval calls.

Each point goes to the console (one line), to ``learning_curve.json`` (rewritten
atomically: a temporary file, then a rename) in the run's staging folder and, at the
end, beside the adapter, and to W&B through the Trainer's log when the run logs there.
With ``patience`` it stops training once the main metric has not improved for that many
evaluations in a row (the adapter saved is the last one, not the best).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from harness_plugins.errors import IntrospectError
from harness_plugins.prompts import vectors
from harness_plugins.prompts.chat import render
from harness_plugins.task_options import TaskOptions
from harness_plugins.training.lora import Example, _Collator, encode_example

logger = logging.getLogger("introspect")

CURVE = "learning_curve.json"


@dataclass
class HeldOut:
    """The held-out documents of one type, their training examples and the scorer's options."""

    type_name: str
    explanation: Any
    options: Mapping[str, Any]
    docs: list[dict[str, Any]]
    examples: list[Example]
    table: vectors.VectorTable
    rows: list[dict[str, Any]] = field(default_factory=list)
    """The examples encoded for the loss (filled when training starts)."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` so that a reader never sees half a file (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        json.dump(data, stream, indent=2, default=str)
    os.replace(temporary, path)


def _aggregate(explanation: Any, per_doc: list[dict[str, Any]]) -> dict[str, float]:
    """Each metric over the slice, as lm-eval aggregates it; metrics with no value left out."""
    from harness_plugins.explanation import Metric, mean

    names = list(explanation.metrics) + [
        n for s in per_doc for n in s if n not in explanation.metrics
    ]
    values: dict[str, float] = {}
    for name in dict.fromkeys(names):
        found = [s[name] for s in per_doc if name in s]
        if not found:
            continue
        try:
            value = float(explanation.metrics.get(name, Metric(mean)).aggregate(found))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(value):
            values[name] = value
    return values


class LearningCurve(TrainerCallback):
    """Evaluates on the held-out slices every ``every`` steps; see the module docstring."""

    def __init__(
        self,
        heldout: Sequence[HeldOut],
        every: int,
        *,
        patience: int | None = None,
        metric: str | None = None,
        max_new_tokens: int = 16,
        batch_size: int = 16,
        max_length: int = 1024,
    ) -> None:
        if every < 1:
            raise IntrospectError(f"--eval_steps must be a positive number of steps, got {every}")
        if not any(part.docs for part in heldout):
            raise IntrospectError(
                "--eval_steps: the held-out slice is empty; raise --eval_examples"
            )
        self.heldout = list(heldout)
        self.every = every
        self.patience = patience
        self.metric = metric
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_length = max_length
        self.points: list[dict[str, Any]] = []
        self.stopped_early = False
        self._trainer: Any = None
        self._tokenizer: Any = None
        self.live: Path | None = None

    # ------------------------------------------------------------------ train_lora addon

    def attach(self, trainer: Any, tokenizer: Any, checkpoint: Path | None) -> None:
        self._trainer, self._tokenizer = trainer, tokenizer
        self.live = Path(trainer.args.output_dir).parent / CURVE  # the run's staging folder
        if checkpoint is not None and self.live.is_file():  # --resume: keep the points so far
            step = int(Path(checkpoint).name.split("-")[-1])
            old = json.loads(self.live.read_text()).get("points", [])
            self.points = [p for p in old if p["step"] <= step]
        for part in self.heldout:
            part.rows = [
                encode_example(tokenizer, e, max_length=self.max_length) for e in part.examples
            ]
        logger.warning("introspect: learning curve every %d steps in %s", self.every, self.live)

    def save(self, folder: Path) -> dict[str, Any]:
        write_json_atomic(Path(folder) / CURVE, self.curve())
        best = self.best()
        return {
            "learning_curve": {
                "file": CURVE,
                "points": len(self.points),
                "metric": self.main_metric(),
                "best_step": best["step"] if best else None,
                "stopped_early": self.stopped_early,
            }
        }

    # ------------------------------------------------------------------ callback events

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **_: Any
    ) -> None:
        if not self.points:
            self.evaluate(model, 0)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> None:
        if state.global_step % self.every == 0:
            self.evaluate(model, state.global_step)
            if self.patience and self._stalled():
                self.stopped_early = True
                control.should_training_stop = True
                logger.warning(
                    "introspect: early stop at step %d: held-out %s has not improved in %d evaluations",
                    state.global_step,
                    self.main_metric(),
                    self.patience,
                )

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **_: Any
    ) -> None:
        if not self.points or self.points[-1]["step"] != state.global_step:
            self.evaluate(model, state.global_step)

    # ------------------------------------------------------------------ the curve

    def main_metric(self) -> str | None:
        """``metric`` if given, else the first metric of the first type that has a value."""
        if self.metric or not self.points:
            return self.metric
        for name in self.points[0]["metrics"]:
            return name
        return None

    def best(self) -> dict[str, Any] | None:
        name = self.main_metric()
        scored = [p for p in self.points if name in p["metrics"]]
        return max(scored, key=lambda p: p["metrics"][name]) if scored else None

    def _stalled(self) -> bool:
        name = self.main_metric()
        values = [p["metrics"].get(name) for p in self.points]
        if len(values) <= self.patience or values[-1] is None:
            return False
        before = [v for v in values[: -self.patience] if v is not None]
        recent = [v for v in values[-self.patience :] if v is not None]
        return bool(before) and max(recent, default=-math.inf) <= max(before)

    def curve(self) -> dict[str, Any]:
        return {
            "eval_steps": self.every,
            "metric": self.main_metric(),
            "heldout": {p.type_name: len(p.docs) for p in self.heldout},
            "partition": "train (held-out slice, disjoint from the training examples)",
            "stopped_early": self.stopped_early,
            "points": self.points,
        }

    def evaluate(self, model: Any, step: int) -> dict[str, Any]:
        """One point of the curve: held-out loss and metrics at ``step``."""
        was_training = model.training
        model.eval()
        try:
            loss = self._loss(model)
            per_type = {p.type_name: self._metrics(model, p) for p in self.heldout}
        finally:
            model.train(was_training)
        flat = {
            (name if len(per_type) == 1 else f"{type_name}/{name}"): value
            for type_name, values in per_type.items()
            for name, value in values.items()
        }
        point = {"step": step, "heldout_loss": loss, "metrics": flat}
        self.points.append(point)
        if self.live is not None:
            write_json_atomic(self.live, self.curve())
        name = self.main_metric()
        shown = f"{name} {flat[name]:.3f}" if name in flat else "no metric"
        logger.warning("introspect: step %d held-out loss %.4f, %s", step, loss, shown)
        print(f"eval step {step}: held-out loss {loss:.4f}, {shown}", flush=True)
        if self._trainer is not None and self._trainer.args.report_to:
            self._trainer.log(
                {"heldout_loss": loss, **{f"heldout_{k}": v for k, v in flat.items()}}
            )
        return point

    # ------------------------------------------------------------------ loss

    def _loss(self, model: Any) -> float:
        import torch

        trainer = self._trainer
        collate = _Collator(self._tokenizer.pad_token_id)
        rows = [row for part in self.heldout for row in part.rows]
        total, count = 0.0, 0
        device = next(model.parameters()).device
        for start in range(0, len(rows), self.batch_size):
            batch = collate(rows[start : start + self.batch_size])
            tokens = int((batch["labels"][:, 1:] != -100).sum())
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
            with torch.no_grad():
                loss = trainer.compute_loss(model, batch)
            total += float(loss) * tokens
            count += tokens
        return total / max(count, 1)

    # ------------------------------------------------------------------ metrics

    def _value(self, key: str) -> Any:
        values = getattr(self._trainer, "slot_values", None)
        return (
            values([key])[0].detach().float().cpu() if values is not None else vectors.vector(key)
        )

    def _encode(self, text: str, row: int, templated: bool) -> tuple[list[int], list[Any]]:
        from ground_truth.primitive import Write

        tokenizer = self._tokenizer
        placeholder = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        ids, slots, _ = vectors.encode(
            text,
            lambda piece, first: tokenizer(piece, add_special_tokens=first and not templated)[
                "input_ids"
            ],
            placeholder,
        )
        return ids, [
            Write("hook_embed", row, position, self._value(key)) for position, key in slots
        ]

    def _metrics(self, model: Any, part: HeldOut) -> dict[str, float]:
        """Greedy answers to the held-out documents, scored as lm-eval scores them."""
        from ground_truth.backends.hf import HFBackend
        from ground_truth.subject import LoadedModel, ModelSpec
        from harness_plugins.explanation import ScoringContext

        tokenizer, explanation = self._tokenizer, part.explanation
        backend = HFBackend(
            LoadedModel(ModelSpec("in-training"), model, tokenizer),
            batch_size=self.batch_size,
            progress=False,
            share_prefixes=False,
        )
        generation = {
            "until": list(explanation.stop_sequences),
            "max_gen_toks": min(explanation.max_gen_tokens, self.max_new_tokens),
            **explanation.generation_kwargs(part.options),
        }
        requests = []
        with part.table.active():
            for doc, example in zip(part.docs, part.examples, strict=True):
                context, templated = render(tokenizer, list(example.messages))
                requests.append((explanation.requests(doc, context, generation), templated))
        answers = self._answer(backend, requests)
        context = ScoringContext(
            options=_without_simulation(part.options),
            subject_tokenizer=lambda: tokenizer,
            simulator=_no_model,
            judge=None,
        )
        scores = [
            explanation.score_results(doc, results, context)
            for doc, results in zip(part.docs, answers, strict=True)
        ]
        return _aggregate(explanation, scores)

    def _answer(self, backend: Any, requests: list[tuple[list[Any], bool]]) -> list[list[Any]]:
        """Every request answered: generations batched by their settings, log-likelihoods in one pass."""
        tokenizer = self._tokenizer
        answers: list[list[Any]] = [[None] * len(reqs) for reqs, _ in requests]
        generate: dict[tuple[int, tuple[str, ...]], list[tuple[int, int, str, bool]]] = {}
        scored: list[tuple[int, int, str, str, bool]] = []
        for d, (reqs, templated) in enumerate(requests):
            for r, (kind, arguments) in enumerate(reqs):
                if kind == "generate_until":
                    kwargs = arguments[1]
                    key = (int(kwargs.get("max_gen_toks", 16)), tuple(kwargs.get("until") or ()))
                    generate.setdefault(key, []).append((d, r, arguments[0], templated))
                elif kind == "loglikelihood":
                    scored.append((d, r, arguments[0], arguments[1], templated))
                else:
                    raise IntrospectError(f"--eval_steps: cannot answer {kind} requests")
        for (max_tokens, until), items in generate.items():
            encoded = [self._encode(text, row, t) for row, (_, _, text, t) in enumerate(items)]
            tokens = backend.generate(
                [ids for ids, _ in encoded],
                max_new_tokens=max_tokens,
                writes=[w for _, ws in encoded for w in ws],
                stop_token_ids=[tokenizer.eos_token_id],
            )
            for (d, r, _, _), new in zip(items, tokens, strict=True):
                text = tokenizer.decode(new, skip_special_tokens=True)
                for stop in until:
                    text = text.split(stop)[0]
                answers[d][r] = text
        if scored:
            sequences, writes, starts = [], [], []
            for row, (_, _, context, continuation, templated) in enumerate(scored):
                spaces = len(context) - len(context.rstrip())
                if spaces:  # lm-eval's convention: trailing spaces belong to the continuation
                    context, continuation = context[:-spaces], context[-spaces:] + continuation
                ids, row_writes = self._encode(context, row, templated)
                starts.append(len(ids))
                sequences.append(
                    ids + tokenizer(continuation, add_special_tokens=False)["input_ids"]
                )
                writes += row_writes
            result = backend.forward(sequences, writes=writes, score_from=starts)
            for row, (d, r, *_) in enumerate(scored):
                answers[d][r] = (float(result.token_logprobs[row].sum()), bool(result.greedy[row]))
        return answers


def _no_model() -> Any:
    raise IntrospectError("--eval_steps scores without a simulator (option simulation is off)")


def read_curve(path: str | Path) -> dict[str, Any]:
    """A learning curve from its file, or from the adapter (or staging) folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / CURVE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise IntrospectError(
            f"no learning curve at {path} ({error}); train with --eval_steps N to write one"
        ) from None


def _without_simulation(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """The scorer's options with no simulator model (none is loaded while training)."""
    if "simulation" not in options:
        return options
    if isinstance(options, TaskOptions):
        return options.replace(simulation=False)
    return {**options, "simulation": False}
