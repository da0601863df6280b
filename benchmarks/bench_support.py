"""What the ground-truth benchmark measures with: timings, memory, token positions, the floor.

Kept apart from `benchmarks/ground_truth.py` so that the counting of minimal token
positions (what the floor is built from) can be tested on its own.
"""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# ---------------------------------------------------------------------- minimal positions


def common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every sequence shares (the chat template's system part)."""
    if not sequences:
        return 0
    shortest = min(map(len, sequences))
    for index in range(shortest):
        token = sequences[0][index]
        if any(sequence[index] != token for sequence in sequences):
            return index
    return shortest


@dataclass
class Segments:
    """The token spans a method cannot avoid computing, as (sequence, start, stop) slices.

    ``shared`` is the prefix common to every prompt of the work, computed once.
    """

    shared: list[int]
    spans: list[tuple[Sequence[int], int, int]] = field(default_factory=list)

    @property
    def positions(self) -> int:
        return len(self.shared) + sum(stop - start for _, start, stop in self.spans)

    def tokens(self) -> list[int]:
        """Every needed token, concatenated (the floor's input)."""
        out = list(self.shared)
        for sequence, start, stop in self.spans:
            out += list(sequence[start:stop])
        return out


def patching_segments(
    donors: Sequence[tuple[Sequence[int], int]], cleans: Sequence[tuple[Sequence[int], int]]
) -> Segments:
    """Activation patching: each donor up to its read position, each clean prompt in full,
    each patched run from the subject position on (over the clean run's KV cache)."""
    shared = common_prefix([ids for ids, _ in donors] + [ids for ids, _ in cleans])
    first = [*donors, *cleans][0][0] if donors or cleans else []
    segments = Segments(list(first[:shared]))
    for ids, position in donors:
        segments.spans.append((ids, shared, max(shared, position + 1)))
    for ids, _ in cleans:
        segments.spans.append((ids, shared, len(ids)))
    for ids, position in cleans:
        segments.spans.append((ids, position, len(ids)))
    return segments


def ablation_segments(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Segments:
    """Input ablation: per (hinted, unhinted) pair, the prefix they share once and both
    suffixes; the prefix common to every prompt once overall."""
    everything = [ids for pair in pairs for ids in pair]
    shared = common_prefix(everything)
    segments = Segments(list(everything[0][:shared]) if everything else [])
    for hinted, unhinted in pairs:
        pair = common_prefix([hinted, unhinted])
        segments.spans.append((hinted, shared, len(hinted)))
        segments.spans.append((unhinted, pair, len(unhinted)))
    return segments


def pack(tokens: Sequence[int], width: int) -> list[list[int]]:
    """``tokens`` cut into rows of ``width`` (the last one shorter): exactly these positions."""
    width = max(1, width)
    return [list(tokens[start : start + width]) for start in range(0, len(tokens), width)]


def floor_forward(model: Any, rows: list[list[int]], batch_size: int, device: torch.device) -> None:
    """Plain batched forwards over packed rows, no hooks, no padding: the cost floor.

    Not a correct computation (segments attend to their neighbours in the row), only the
    same number of token positions through the same model.
    """
    full = [row for row in rows if len(row) == len(rows[0])]
    rest = [row for row in rows if len(row) != len(rows[0])]
    for start in range(0, len(full), batch_size):
        ids = torch.tensor(full[start : start + batch_size], device=device)
        model(input_ids=ids, use_cache=False, logits_to_keep=1)
    for row in rest:
        model(input_ids=torch.tensor([row], device=device), use_cache=False, logits_to_keep=1)


def left_pad(
    rows: Sequence[Sequence[int]], pad: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Left-padded ids, mask, position ids and each row's offset (how peers batch)."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    offsets = []
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(list(row))
        mask[i, width - len(row) :] = 1
        offsets.append(width - len(row))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device), offsets


# ---------------------------------------------------------------------- measuring


class PositionCounter:
    """Token positions (padding included) that reach an embedding sharing ``weight``.

    Counts what a method really computes without touching its code: a forward hook on
    every embedding module in ``roots`` whose weight is the subject's.
    """

    def __init__(self, weight: torch.Tensor, roots: Sequence[torch.nn.Module]) -> None:
        self.count = 0
        self.handles = []
        seen: set[int] = set()
        for root in roots:
            for module in root.modules():
                if (
                    isinstance(module, torch.nn.Embedding)
                    and module.weight is weight
                    and id(module) not in seen
                ):
                    seen.add(id(module))
                    self.handles.append(module.register_forward_hook(self._hook))

    def _hook(self, module: Any, args: Any, output: torch.Tensor) -> None:
        self.count += output.shape[0] * output.shape[1]

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


class PeakMemory:
    """Peak growth of GPU allocations, or of this process's resident set, during a block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self.base = 0
        self.running = False

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self.rss()
            self.running = True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss() - self.base)
            time.sleep(0.005)

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.running = False
            self.thread.join()
            self.peak = max(self.peak, self.rss() - self.base)


@dataclass
class Timing:
    """Seconds of each repeat, positions computed in one run, and the peak memory growth."""

    seconds: list[float]
    positions: int | None
    peak: int
    result: Any = None  # what the work returned on its last run

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def measure(
    device: torch.device,
    work: Callable[[], Any],
    repeats: int,
    counter: Callable[[], PositionCounter] | None = None,
    warmup: int = 1,
) -> Timing:
    """Run ``work`` ``repeats`` times under inference mode, after ``warmup`` untimed runs
    (first-call costs: lazy initialisation, allocator growth); count positions once."""
    with torch.inference_mode():
        for _ in range(warmup):
            work()
    seconds, peak, positions, result = [], 0, None, None
    for repeat in range(repeats):
        count = counter() if counter is not None and repeat == 0 else None
        try:
            with PeakMemory(device) as memory:
                started = time.perf_counter()
                with torch.inference_mode():
                    result = work()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds.append(time.perf_counter() - started)
        finally:
            if count is not None:
                count.close()
                positions = count.count
        peak = max(peak, memory.peak)
    return Timing(seconds, positions, peak, result)


def print_table(work: str, rows: dict[str, Timing | str], floor_positions: int) -> None:
    """One line per method: median (min-max) seconds, positions, peak MiB, x floor."""
    print(f"\n{work} (minimal token positions: {floor_positions})")
    print(
        f"  {'method':<24}{'median s':>10}{'min-max s':>16}{'positions':>11}{'peak MiB':>10}"
        f"{'x floor':>9}"
    )
    floor = rows.get("floor")
    for method, timing in rows.items():
        if isinstance(timing, str):
            print(f"  {method:<24}not run: {timing}")
            continue
        spread = f"{min(timing.seconds):.2f}-{max(timing.seconds):.2f}"
        ratio = timing.median / floor.median if isinstance(floor, Timing) else float("nan")
        positions = "" if timing.positions is None else str(timing.positions)
        print(
            f"  {method:<24}{timing.median:>10.3f}{spread:>16}{positions:>11}"
            f"{timing.peak / 2**20:>10.0f}{ratio:>9.2f}"
        )


def empty_reference_cache(folder: str | Path) -> Path:
    """A cache folder with no references that reuses the real cache's converted models
    (and fingerprints), so that a cold build is timed without a model conversion."""
    from ground_truth.store import cache_root

    real, fresh = cache_root(), Path(folder)
    fresh.mkdir(parents=True, exist_ok=True)
    if (real / "models").is_dir() and not (fresh / "models").exists():
        (fresh / "models").symlink_to(real / "models", target_is_directory=True)
    if (real / "fingerprints.json").is_file():
        shutil.copyfile(real / "fingerprints.json", fresh / "fingerprints.json")
    return fresh


def reference_cache(model: str, cases: int, device: torch.device, repeats: int) -> str:
    """What a reference-cache hit costs against building the same input_ablation references
    (target < 5%): the line to print."""
    import tempfile

    from harness_plugins.references import ReferencePipeline

    previous = os.environ.get("INTROSPECT_CACHE_DIR")

    def ensure() -> None:
        ReferencePipeline("input_ablation", {"subject": model}).ensure(cases)

    try:
        with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
            first, second = empty_reference_cache(first), empty_reference_cache(second)
            os.environ["INTROSPECT_CACHE_DIR"] = str(first)
            ensure()  # loads the subject (once per process): not part of a build
            os.environ["INTROSPECT_CACHE_DIR"] = str(second)
            build = measure(device, ensure, 1, warmup=0)
            hit = measure(device, ensure, max(3, repeats), warmup=0)
    finally:
        if previous is None:
            os.environ.pop("INTROSPECT_CACHE_DIR", None)
        else:
            os.environ["INTROSPECT_CACHE_DIR"] = previous
    share = hit.median / build.median
    verdict = "met" if share < 0.05 else "missed"
    return (
        f"reference cache: hit {hit.median:.3f} s / build {build.median:.2f} s = {share:.3f} "
        f"(target < 0.05): {verdict}"
    )
