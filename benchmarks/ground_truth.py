"""How fast is ground truth, against the least work possible and against the best peers?

    python benchmarks/ground_truth.py                      # SmolLM2-135M-Instruct, CPU, float32
    python benchmarks/ground_truth.py --device cuda --dtype bfloat16 --batch-size 64

The same cases for every method, in the same dtype, with the same batch size:

* activation patching: per case the donor (counterfactual) prompt is read at its subject
  token over a window of blocks, the clean prompt runs, and the clean prompt runs again
  with those residuals written at its subject token (all blocks in one patched pass);
* input ablation: each question runs with and without the hint.

Methods: ``floor`` is one plain forward (no hooks, no padding) over exactly the minimal
token positions (donor up to its read position, clean prompt in full, patched run only
from the subject position on over the clean KV cache, input-ablation pairs sharing their
common prefix, the prefix common to every prompt once): a cost floor, not a correct
computation. ``hf`` is the product, through the explanation type's ``build_references``
as lm-eval runs it. The peers are in `benchmarks.ground_truth_peers`. Each method runs
``--repeats`` times; the table gives the median (min-max), the token positions it computed
(padding included), the peak growth of memory (resident set on CPU, allocations on GPU;
on CPU the allocator reuses freed memory, so later methods show less) and the ratio to the
floor; the last lines say whether the targets are met: hf <= 1.1x the floor, and the
fastest peer >= 1.3x slower than hf.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks import ground_truth_peers as peers
from benchmarks.bench_support import (
    PositionCounter,
    Timing,
    ablation_segments,
    floor_forward,
    measure,
    pack,
    patching_segments,
    print_table,
    reference_cache,
)
from ground_truth.backends.hf import HFBackend, find_decoder_layers
from ground_truth.subject import ModelSpec, load_model
from harness_plugins.builtin.causal.activation_patching import ActivationPatching, patching_prompts
from harness_plugins.builtin.causal.input_ablation import ANSWER_PREFIX as ABLATION_PREFIX
from harness_plugins.builtin.causal.input_ablation import InputAblation, question_block
from harness_plugins.explanation import ReferenceContext
from harness_plugins.options import resolve_options
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.registry import get_registry

HF_OVER_FLOOR = 1.1
PEER_OVER_HF = 1.3
PEERS = ("transformer_lens per case", "transformer_lens batched", "nnsight batched")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--cases", type=int, default=32, help="patching cases and questions")
    parser.add_argument("--window", type=int, default=8, help="blocks patched per case")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--repeats", type=int, default=3, help="runs per method (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per method first")
    parser.add_argument(
        "--skip", action="append", default=[], choices=PEERS, help="leave a peer out"
    )
    parser.add_argument("--skip-cache", action="store_true", help="do not time the cache")
    return parser.parse_args()


def patching_cases(
    tokenizer: Any, options: Any, count: int
) -> tuple[Any, list[peers.Case], list[peers.Case]]:
    """The questions and, per case, the (ids, subject position) of donor and clean prompt."""
    patching = ActivationPatching()
    questions = patching.questions(options).select(range(count))
    cleans, donors = patching_prompts(tokenizer, questions)
    return questions, donors, cleans


def ablation_cases(tokenizer: Any, options: Any, count: int) -> tuple[Any, list[list[int]]]:
    """The questions and their prompts, hinted then unhinted, as the type encodes them."""
    questions = InputAblation().questions(options).select(range(count))
    sequences = [
        encode_prompt(
            tokenizer,
            [
                {
                    "role": "user",
                    "content": question_block(doc, options["hint_template"] if hinted else None),
                }
            ],
            ABLATION_PREFIX,
        )
        for doc in questions
        for hinted in (True, False)
    ]
    return questions, sequences


def run_method(
    rows: dict[str, Timing | str],
    name: str,
    build: Callable[[], Callable[[], None]],
    device: torch.device,
    repeats: int,
    warmup: int,
    counter: Callable[[], PositionCounter],
) -> None:
    """Time one method; a peer that cannot run is reported with its reason, not fatal."""
    try:
        rows[name] = measure(device, build(), repeats, counter, warmup)
    except Exception as error:  # a peer's failure is a finding to print, not a crash
        reason = (str(error).splitlines() or [""])[0][:160]
        rows[name] = f"{type(error).__name__}: {reason}"
        print(f"{name}: not run ({rows[name]})", file=sys.stderr)


def verdicts(work: str, rows: dict[str, Timing | str]) -> list[str]:
    lines = []
    hf, floor = rows.get("hf"), rows.get("floor")
    if isinstance(hf, Timing) and isinstance(floor, Timing):
        ratio = hf.median / floor.median
        met = "met" if ratio <= HF_OVER_FLOOR else "missed"
        lines.append(f"{work}: hf / floor = {ratio:.3f} (target <= {HF_OVER_FLOOR}): {met}")
    ran = {name: rows[name] for name in PEERS if isinstance(rows.get(name), Timing)}
    if isinstance(hf, Timing) and ran:
        best = min(ran, key=lambda name: ran[name].median)
        ratio = ran[best].median / hf.median
        met = "met" if ratio >= PEER_OVER_HF else "missed"
        lines.append(
            f"{work}: best peer ({best}) / hf = {ratio:.3f} (target >= {PEER_OVER_HF}): {met}"
        )
    elif isinstance(hf, Timing):
        lines.append(f"{work}: best peer / hf: no peer ran")
    return lines


def agreement(tokenizer: Any, rows: dict[str, Timing | str]) -> list[str]:
    """Whether each peer's patched greedy token equals the one ``hf`` recorded, per case:
    a peer that patched something else would be timed on other work."""
    hf = rows.get("hf")
    if not isinstance(hf, Timing) or hf.result is None:
        return []
    expected = list(hf.result["after"])
    lines = []
    for name in PEERS:
        peer = rows.get(name)
        if isinstance(peer, Timing) and isinstance(peer.result, torch.Tensor):
            tokens = [tokenizer.decode([int(i)]).strip() for i in peer.result.argmax(-1)]
            same = sum(a == b for a, b in zip(tokens, expected, strict=True))
            lines.append(
                f"activation patching: {name} patched tokens equal hf's in {same} of "
                f"{len(expected)} cases"
            )
    return lines


def main() -> int:
    args = parse_arguments()
    device = torch.device(args.device)
    registry = get_registry()
    subject = load_model(
        ModelSpec(args.model, dtype=args.dtype), registry.model_aliases, device=args.device
    )
    tokenizer, model = subject.tokenizer, subject.model
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    hf = HFBackend(subject, batch_size=args.batch_size, progress=False)
    embedding = model.get_input_embeddings().weight
    print(
        f"model {args.model}: {hf.n_layers} blocks, d_model {hf.d_model}, {args.dtype} on "
        f"{device}; {args.cases} cases, window {args.window}, batch {args.batch_size}, "
        f"{args.repeats} repeats, torch threads {torch.get_num_threads()}"
    )

    patching, ablation = ActivationPatching(), InputAblation()
    ap_options = resolve_options("bench", patching.all_options(), {"window": args.window})
    ab_options = resolve_options("bench", ablation.all_options(), {})
    layers = patching.window(ap_options, hf.n_layers)
    ap_questions, donors, cleans = patching_cases(tokenizer, ap_options, args.cases)
    ab_questions, ab_sequences = ablation_cases(tokenizer, ab_options, args.cases)
    ap_segments = patching_segments(donors, cleans)
    ab_segments = ablation_segments(list(zip(ab_sequences[0::2], ab_sequences[1::2], strict=True)))
    width = max(len(ids) for ids, _ in cleans)
    ap_rows = pack(ap_segments.tokens(), width)
    ab_rows = pack(ab_segments.tokens(), max(map(len, ab_sequences)))
    print(
        f"activation patching: {ap_segments.positions} minimal positions "
        f"({len(ap_segments.shared)} shared once) of "
        f"{sum(len(ids) for ids, _ in donors) + 2 * sum(len(ids) for ids, _ in cleans)} in full "
        f"sequences; input ablation: {ab_segments.positions} of "
        f"{sum(map(len, ab_sequences))}"
    )

    def counter_on(*roots: torch.nn.Module) -> Callable[[], PositionCounter]:
        return lambda: PositionCounter(embedding, roots)

    on_model = counter_on(model)
    ap_out: dict[str, Timing | str] = {}
    ab_out: dict[str, Timing | str] = {}

    def timed(
        rows: dict[str, Timing | str],
        name: str,
        build: Callable[[], Callable[[], Any]],
        counter: Callable[[], PositionCounter] = on_model,
    ) -> None:
        run_method(rows, name, build, device, args.repeats, args.warmup, counter)

    def floor_work(rows: list[list[int]]) -> Callable[[], None]:
        return lambda: floor_forward(model, rows, args.batch_size, device)

    timed(ap_out, "floor", lambda: floor_work(ap_rows))
    timed(ab_out, "floor", lambda: floor_work(ab_rows))
    ap_context = ReferenceContext(subject, hf, ap_options)
    ab_context = ReferenceContext(subject, hf, ab_options)
    timed(ap_out, "hf", lambda: lambda: patching.build_references(ap_questions, ap_context))
    timed(ab_out, "hf", lambda: lambda: ablation.build_references(ab_questions, ab_context))

    if {"transformer_lens per case", "transformer_lens batched"} - set(args.skip):
        run_transformer_lens(
            args,
            subject,
            (donors, cleans, layers, ab_sequences),
            pad,
            device,
            (ap_out, ab_out),
            timed,
            counter_on,
        )
    if "nnsight batched" not in args.skip:
        holder: dict[str, peers.NNsightPeer] = {}

        def nnsight_peer() -> peers.NNsightPeer:
            """Wrapped on first use, so that the methods before run an unwrapped module."""
            if "peer" not in holder:
                holder["peer"] = peers.NNsightPeer(model, find_decoder_layers(model))
            return holder["peer"]

        timed(
            ap_out,
            "nnsight batched",
            lambda: nnsight_peer().patching(donors, cleans, layers, args.batch_size, pad, device),
        )
        timed(
            ab_out,
            "nnsight batched",
            lambda: nnsight_peer().ablation(ab_sequences, args.batch_size, pad, device),
        )

    print_table(
        f"activation patching ({args.cases} cases x {len(layers)} blocks)",
        ap_out,
        ap_segments.positions,
    )
    print_table(f"input ablation ({args.cases} questions)", ab_out, ab_segments.positions)
    print()
    for line in agreement(tokenizer, ap_out):
        print(line)
    for line in verdicts("activation patching", ap_out) + verdicts("input ablation", ab_out):
        print(line)
    if not args.skip_cache:
        print(reference_cache(args.model, args.cases, device, args.repeats))
    return 0


def run_transformer_lens(
    args: argparse.Namespace,
    subject: Any,
    cases: tuple[list[peers.Case], list[peers.Case], list[int], list[list[int]]],
    pad: int,
    device: torch.device,
    out: tuple[dict[str, Timing | str], dict[str, Timing | str]],
    timed: Callable[..., None],
    counter_on: Callable[..., Callable[[], PositionCounter]],
) -> None:
    """Both TransformerLens peers over one bridge on the subject's own weights."""
    donors, cleans, layers, ab_sequences = cases
    ap_out, ab_out = out
    try:
        from ground_truth.backends.transformer_lens import build_bridge

        bridge = build_bridge(subject.model)
    except Exception as error:  # no bridge: both peers are reported as not run
        reason = f"cannot build the bridge: {type(error).__name__}: {error}"
        for name in ("transformer_lens per case", "transformer_lens batched"):
            ap_out[name] = ab_out[name] = reason
        return
    on_bridge = counter_on(bridge)
    one_by_one, batched = peers.tl_ablation(bridge, ab_sequences, args.batch_size, pad, device)
    if "transformer_lens per case" not in args.skip:
        timed(
            ap_out,
            "transformer_lens per case",
            lambda: peers.tl_per_case(bridge, donors, cleans, layers, device),
            on_bridge,
        )
        timed(ab_out, "transformer_lens per case", lambda: one_by_one, on_bridge)
    if "transformer_lens batched" not in args.skip:
        timed(
            ap_out,
            "transformer_lens batched",
            lambda: peers.tl_batched(bridge, donors, cleans, layers, args.batch_size, pad, device),
            on_bridge,
        )
        timed(ab_out, "transformer_lens batched", lambda: batched, on_bridge)


if __name__ == "__main__":
    sys.exit(main())
