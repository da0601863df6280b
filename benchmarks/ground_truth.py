"""How fast is ground truth? One run, one model, the same cases for every method.

    python benchmarks/ground_truth.py                       # SmolLM2-135M-Instruct on CPU
    python benchmarks/ground_truth.py --device cuda --dtype bfloat16 --batch-size 64

Activation patching (N cases, the residual at the subject token overwritten over a window
of blocks) and input ablation (N questions, with and without the hint), each built by:

* ``hf``: the shipped ``hf`` backend through the explanation type, as ``lm_eval`` does;
* ``transformer_lens``: TransformerLens's own patching machinery, per case
  (``run_with_cache`` for the counterfactual, ``run_with_hooks`` for the patch);
* ``naive``: the ``hf`` primitive called once per sequence (no batching);
* ``floor``: one plain batched forward over the same sequences, no hooks at all.

Prints seconds, peak memory (growth of the resident set on CPU, allocated memory on
GPU) and the ratios the project targets, plus what a reference-cache hit costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from ground_truth.backends.hf import HFBackend
from ground_truth.primitive import Read, Write
from ground_truth.sites import site
from ground_truth.subject import ModelSpec, load_model
from harness_plugins.builtin.activation_patching import (
    ANSWER_PREFIX,
    ActivationPatching,
    fact_question,
    subject_last_token,
)
from harness_plugins.builtin.input_ablation import (
    ANSWER_PREFIX as ABLATION_PREFIX,
)
from harness_plugins.builtin.input_ablation import InputAblation
from harness_plugins.explanation import ReferenceContext
from harness_plugins.options import resolve_options
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.registry import get_registry


class PeakMemory:
    """Peak growth of GPU allocations, or of this process's resident set, during a block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self._rss()
            self.running = True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._rss() - self.base)
            time.sleep(0.005)

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.running = False
            self.thread.join()
            self.peak = max(self.peak, self._rss() - self.base)


def timed(device: torch.device, work: Callable[[], Any], repeats: int) -> tuple[float, int]:
    """Best-of-``repeats`` seconds and the peak memory of one run."""
    best, peak = float("inf"), 0
    for _ in range(repeats):
        with PeakMemory(device) as memory:
            started = time.perf_counter()
            with torch.inference_mode():
                work()
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
        best, peak = min(best, elapsed), max(peak, memory.peak)
    return best, peak


def floor(
    model: Any, sequences: list[list[int]], batch_size: int, pad: int, device: torch.device
) -> None:
    """One plain batched forward over every sequence: left padding, next-token logits only."""
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    for start in range(0, len(order), batch_size):
        rows = [sequences[i] for i in order[start : start + batch_size]]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            logits_to_keep=1,
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--cases", type=int, default=32, help="activation-patching cases and ablation questions"
    )
    parser.add_argument("--window", type=int, default=8, help="blocks patched per case")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--repeats", type=int, default=2, help="best of N timings per method")
    parser.add_argument("--skip-transformer-lens", action="store_true")
    args = parser.parse_args()

    device = torch.device(args.device)
    registry = get_registry()
    subject = load_model(
        ModelSpec(args.model, dtype=args.dtype), registry.model_aliases, device=args.device
    )
    tokenizer, model = subject.tokenizer, subject.model
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    hf = HFBackend(subject, batch_size=args.batch_size, progress=False)
    n_layers = hf.n_layers
    print(
        f"model {args.model}: {n_layers} blocks, d_model {hf.d_model}, {args.dtype} on {device}; "
        f"{args.cases} cases, batch {args.batch_size}, torch threads {torch.get_num_threads()}"
    )

    # ---- the cases, prepared once (not timed)
    patching = ActivationPatching()
    ap_options = resolve_options("bench", patching.all_options(), {"window": args.window})
    ap_questions = patching.questions(ap_options).select(range(args.cases))
    window = patching.window(ap_options, n_layers)
    clean, donor = [], []
    for doc in ap_questions:
        messages = [{"role": "user", "content": fact_question(doc["prompt"], doc["choices"])}]
        clean.append(subject_last_token(tokenizer, messages, doc["subject"], ANSWER_PREFIX))
        cf = [
            {"role": "user", "content": fact_question(doc["counterfactual_prompt"], doc["choices"])}
        ]
        donor.append(
            subject_last_token(tokenizer, cf, doc["counterfactual_subject"], ANSWER_PREFIX)
        )
    ablation = InputAblation()
    ab_options = resolve_options("bench", ablation.all_options(), {})
    ab_questions = ablation.questions(ab_options).select(range(args.cases))
    ab_sequences = [
        encode_prompt(
            tokenizer, ablation._subject_messages(doc, hinted, ab_options), ABLATION_PREFIX
        )
        for doc in ab_questions
        for hinted in (True, False)
    ]
    ap_sequences = [ids for ids, _ in donor] + [ids for ids, _ in clean] * 2

    def naive_patching() -> None:
        one = HFBackend(subject, batch_size=1, progress=False)
        for (cf_ids, cf_pos), (ids, pos) in zip(donor, clean, strict=True):
            reads = one.forward(
                [cf_ids],
                reads=[Read(site("resid_post", layer), 0, cf_pos) for layer in window],
            ).reads
            one.forward([ids])
            one.forward(
                [ids],
                writes=[
                    Write(site("resid_post", layer), 0, pos, r)
                    for layer, r in zip(window, reads, strict=True)
                ],
            )

    def naive_ablation() -> None:
        one = HFBackend(subject, batch_size=1, progress=False)
        for ids in ab_sequences:
            one.forward([ids])

    rows: dict[str, dict[str, tuple[float, int]]] = {
        "activation patching": {},
        "input ablation": {},
    }
    ap_context = ReferenceContext(subject, hf, ap_options)
    ab_context = ReferenceContext(subject, hf, ab_options)
    rows["activation patching"]["hf"] = timed(
        device, lambda: patching.build_references(ap_questions, ap_context), args.repeats
    )
    rows["input ablation"]["hf"] = timed(
        device, lambda: ablation.build_references(ab_questions, ab_context), args.repeats
    )
    rows["activation patching"]["naive"] = timed(device, naive_patching, 1)
    rows["input ablation"]["naive"] = timed(device, naive_ablation, 1)
    rows["activation patching"]["floor"] = timed(
        device, lambda: floor(model, ap_sequences, args.batch_size, pad, device), args.repeats
    )
    rows["input ablation"]["floor"] = timed(
        device, lambda: floor(model, ab_sequences, args.batch_size, pad, device), args.repeats
    )

    if not args.skip_transformer_lens:
        from ground_truth.backends.transformer_lens import TransformerLensBackend

        bridge = TransformerLensBackend(subject, batch_size=args.batch_size, progress=False).bridge
        names = {site("resid_post", layer) for layer in window}

        def tl_patching() -> None:
            for (cf_ids, cf_pos), (ids, pos) in zip(donor, clean, strict=True):
                _, cache = bridge.run_with_cache(
                    torch.tensor([cf_ids], device=device), names_filter=lambda n: n in names
                )
                bridge(torch.tensor([ids], device=device))
                hooks = [
                    (
                        name,
                        # the bridge calls hooks by its own names (blocks.L.hook_out), so
                        # the site's name travels with the hook
                        lambda act, hook, _cache=cache, _p=pos, _cp=cf_pos, _name=name: _patch(
                            act, _cache[_name], _p, _cp
                        ),
                    )
                    for name in names
                ]
                bridge.run_with_hooks(torch.tensor([ids], device=device), fwd_hooks=hooks)

        def tl_ablation() -> None:
            for ids in ab_sequences:
                bridge(torch.tensor([ids], device=device))

        rows["activation patching"]["transformer_lens"] = timed(device, tl_patching, 1)
        rows["input ablation"]["transformer_lens"] = timed(device, tl_ablation, 1)

    # ---- cache: a hit against a build of the same references
    with tempfile.TemporaryDirectory() as folder:
        os.environ["INTROSPECT_CACHE_DIR"] = folder
        from harness_plugins.references import ReferencePipeline

        def pipeline() -> Any:
            return ReferencePipeline("input_ablation", {"subject": args.model})

        build = timed(device, lambda: pipeline().ensure(args.cases), 1)
        hit = timed(device, lambda: pipeline().ensure(args.cases), 3)

    print()
    print(f"{'work':<22}{'method':<18}{'seconds':>9}{'peak MiB':>10}{'sequences/s':>13}")
    counts = {"activation patching": len(ap_sequences), "input ablation": len(ab_sequences)}
    for work, methods in rows.items():
        for method, (seconds, peak) in methods.items():
            print(
                f"{work:<22}{method:<18}{seconds:>9.2f}{peak / 2**20:>10.0f}{counts[work] / seconds:>13.1f}"
            )
    print(f"{'reference cache':<22}{'build':<18}{build[0]:>9.2f}")
    print(f"{'reference cache':<22}{'hit':<18}{hit[0]:>9.3f}")
    print()
    targets = []
    for work, limit in (("activation patching", 1.5), ("input ablation", 1.3)):
        methods = rows[work]
        ratio = methods["hf"][0] / methods["floor"][0]
        targets.append((f"{work}: hf / floor", ratio, f"<= {limit}", ratio <= limit))
        targets.append(
            (f"{work}: naive / hf", methods["naive"][0] / methods["hf"][0], "(batching gain)", None)
        )
        if "transformer_lens" in methods:
            speedup = methods["transformer_lens"][0] / methods["hf"][0]
            targets.append(
                (
                    f"{work}: transformer_lens / hf",
                    speedup,
                    ">= 3",
                    speedup >= 3 if work == "activation patching" else None,
                )
            )
    share = hit[0] / build[0]
    targets.append(("cache hit / build", share, "< 0.05", share < 0.05))
    for name, value, goal, met in targets:
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{name:<40}{value:>8.3f}  {goal:<16}{verdict}")
    return 0


def _patch(
    activation: torch.Tensor, donor: torch.Tensor, position: int, donor_position: int
) -> torch.Tensor:
    activation[:, position] = donor[:, donor_position]
    return activation


if __name__ == "__main__":
    sys.exit(main())
