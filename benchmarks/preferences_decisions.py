"""How fast does the subject make its `preferences` decisions, with and without shared prefixes?

    python benchmarks/preferences_decisions.py                    # SmolLM2-135M-Instruct, CPU
    python benchmarks/preferences_decisions.py --scenarios 10 --pairs 50 --repeats 3

The decisions of a run (``--scenarios`` x ``--pairs`` prompts of the paper's built-in
scenarios, as the type's ``build_references`` makes them) run through the ``hf`` backend
three ways, in one process on the same model:

* ``plain``: every decision a whole forward, batched by length (``share_prefixes=False``);
* ``shared, token order``: rows that start alike batched together in token order, each
  batch's shared prefix once (the prefix-reuse path before rows were ordered by length);
* ``shared, length order``: the same, rows that start alike ordered by length (the default).

Each prints the median (min-max) seconds of ``--repeats`` runs after a warm-up, decisions
per second, the token positions computed (padding included) and the padding, and the
largest difference of P(A) from the plain run (the reference each decision gives).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from ground_truth.backends.hf import HFBackend
from ground_truth.subject import ModelSpec, load_model
from harness_plugins.builtin.preferences.reports import decision_messages, scenario_doc
from harness_plugins.builtin.preferences.scenarios import builtin_scenarios
from harness_plugins.builtin.preferences.weight_reports import Preferences
from harness_plugins.options import resolve_options
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.registry import get_registry

WAYS = {
    "plain": {"share_prefixes": False},
    "shared, token order": {"share_prefixes": True, "length_order": False},
    "shared, length order": {"share_prefixes": True, "length_order": True},
}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scenarios", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=50, help="decisions per scenario")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args(argv)


def decisions(tokenizer, scenarios: int, pairs: int) -> list[list[int]]:
    """The decision prompts ``build_references`` runs, scenario after scenario."""
    kind = Preferences()
    options = resolve_options("preferences", kind.all_options(), {"seed": 0, "pairs": pairs})
    sequences = []
    for scenario in builtin_scenarios()[:scenarios]:
        doc = scenario_doc(scenario)
        a_values, b_values = kind.option_pairs(doc, options)
        sequences += [
            encode_prompt(tokenizer, decision_messages(doc, a, b))
            for a, b in zip(a_values, b_values, strict=True)
        ]
    return sequences


def letters(tokenizer) -> list[int]:
    return [tokenizer.encode(letter, add_special_tokens=False)[0] for letter in ("A", "B")]


def run_way(subject, sequences, settings: dict, args: argparse.Namespace) -> dict:
    """Seconds of each repeat, positions and padding of one run, and P(A) per decision."""
    backend = HFBackend(
        subject,
        batch_size=args.batch_size,
        progress=False,
        share_prefixes=settings["share_prefixes"],
    )
    backend.length_order = settings.get("length_order", True)
    ids = letters(subject.tokenizer)
    counts = {"positions": 0, "padding": 0}
    run = backend.run

    def counted(tokens, mask, plan, **kwargs):
        counts["positions"] += tokens.numel()
        counts["padding"] += int((mask[:, -tokens.shape[1] :] == 0).sum())
        return run(tokens, mask, plan, **kwargs)

    backend.forward(sequences[: args.batch_size], logit_ids=ids)  # warm-up
    backend.run = counted
    seconds, p_a = [], None
    for repeat in range(args.repeats):
        if repeat:
            backend.run = run  # count the first timed run only
        started = time.perf_counter()
        logits = backend.forward(sequences, logit_ids=ids).last_logits
        seconds.append(time.perf_counter() - started)
        p_a = torch.softmax(logits.double(), dim=-1)[:, 0]
    return {"seconds": seconds, "p_a": p_a, **counts}


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    subject = load_model(
        ModelSpec(args.model, dtype=args.dtype), get_registry().model_aliases, device=args.device
    )
    sequences = decisions(subject.tokenizer, args.scenarios, args.pairs)
    tokens = sum(map(len, sequences))
    print(
        f"model {args.model}, {args.dtype} on {args.device}; {len(sequences)} decisions "
        f"({args.scenarios} scenarios x {args.pairs}), {tokens} prompt tokens, batch "
        f"{args.batch_size}, {args.repeats} repeats, torch threads {torch.get_num_threads()}"
    )
    results = {name: run_way(subject, sequences, way, args) for name, way in WAYS.items()}
    plain = results["plain"]
    print(
        f"{'way':<22} {'median s':>9} {'min-max s':>13} {'decisions/s':>12} "
        f"{'positions':>10} {'padding':>8} {'max |dP(A)|':>12}"
    )
    for name, result in results.items():
        median = statistics.median(result["seconds"])
        spread = f"{min(result['seconds']):.2f}-{max(result['seconds']):.2f}"
        difference = float((result["p_a"] - plain["p_a"]).abs().max())
        print(
            f"{name:<22} {median:>9.2f} {spread:>13} {len(sequences) / median:>12.2f} "
            f"{result['positions']:>10} {result['padding']:>8} {difference:>12.2e}"
        )
    after = results["shared, length order"]
    speedup = statistics.median(plain["seconds"]) / statistics.median(after["seconds"])
    print(
        f"shared, length order vs plain: {speedup:.2f}x decisions/s, "
        f"{after['positions'] / plain['positions']:.2f}x positions"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
