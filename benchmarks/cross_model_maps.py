"""Fitting every cross-model map of a pair: one read per layer pair (before) vs one read per model.

    python benchmarks/cross_model_maps.py                    # SmolLM2 -> Gemma 3, every layer
    python benchmarks/cross_model_maps.py --texts 200 --repeats 3

Both ways fit the same maps (subject layer l -> explainer layer l*, the layer at the same
relative depth) on the same shared texts, each on an empty cache:

* ``per_pair`` (before): `fit_affine_map` reads the texts through both models for each
  pair, as every map was fitted before the states were shared;
* ``shared`` (after): the task's `CrossModelMapper`, which reads each model once for all
  its layers (`ground_truth.text_states`) and solves each pair from those states.

Printed: seconds per way (median, min-max over ``--repeats``), forward passes, the ratio,
and the largest difference between the two ways' weights (they must agree).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subject", default="smollm2-135m-instruct")
    parser.add_argument("--explainer", default="gemma-3-270m")
    parser.add_argument("--texts", type=int, default=0, help="first N shared texts (0: all)")
    parser.add_argument("--layers", type=int, default=0, help="first N subject layers (0: all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args(argv)


class Counter:
    """Counts `backend.forward` calls (a pass over the texts) of every backend."""

    def __init__(self) -> None:
        self.passes = 0

    def wrap(self, backend: Any) -> Any:
        plain = backend.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            self.passes += 1
            return plain(*args, **kwargs)

        backend.forward = forward
        return backend


def per_pair(mapper: Any, texts: list[str], layers: list[int], counter: Counter) -> dict:
    from ground_truth.affine_map import fit_affine_map

    mapper._load()
    source = counter.wrap(mapper._subject_backend)
    target = counter.wrap(mapper._explainer_backend)
    return {
        layer: fit_affine_map(
            source,
            target,
            mapper._subject.tokenizer,
            mapper._explainer.tokenizer,
            texts,
            layer,
            mapper.explainer_layer(layer),
        )
        for layer in layers
    }


def shared(mapper: Any, texts: list[str], layers: list[int], counter: Counter) -> dict:
    mapper._load()
    mapper._texts = texts
    counter.wrap(mapper._subject_backend)
    counter.wrap(mapper._explainer_backend)
    return {layer: mapper.map_for(layer) for layer in layers}


def measure(args: argparse.Namespace, way: Any) -> tuple[float, int, dict]:
    """Seconds, passes and maps of one way, on a fresh empty cache (models already loaded)."""
    from ground_truth.subject import ModelSpec
    from harness_plugins.prompts.cross_model import mapper_for, shared_texts
    from harness_plugins.registry import get_registry

    with tempfile.TemporaryDirectory() as cache:
        os.environ["INTROSPECT_CACHE_DIR"] = cache
        mapper = mapper_for(
            ModelSpec(args.subject),
            ModelSpec(args.explainer),
            get_registry(),
            {"backend": "hf", "gt_batch_size": args.batch_size},
        )
        texts = shared_texts()[: args.texts or None]
        layers = list(range(mapper.subject_layers))[: args.layers or None]
        counter = Counter()
        start = time.perf_counter()
        maps = way(mapper, texts, layers, counter)
        return time.perf_counter() - start, counter.passes, maps


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    home = os.environ.get("INTROSPECT_CACHE_DIR")
    # load (and convert) both models once from the user's cache, outside the timing
    from ground_truth.subject import ModelSpec, load_model
    from harness_plugins.registry import get_registry

    aliases = get_registry().model_aliases
    kept = [load_model(ModelSpec(name), aliases) for name in (args.subject, args.explainer)]
    for model in kept:
        model.fingerprint  # noqa: B018  (computed once, outside the timing)
    timings: dict[str, list[float]] = {"per_pair": [], "shared": []}
    passes: dict[str, int] = {}
    maps: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name, way in (("per_pair", per_pair), ("shared", shared)):
            seconds, passes[name], maps[name] = measure(args, way)
            timings[name].append(seconds)
    if home is not None:
        os.environ["INTROSPECT_CACHE_DIR"] = home
    difference = max(
        float((maps["per_pair"][k].weight - maps["shared"][k].weight).abs().max())
        for k in maps["shared"]
    )
    print(
        f"{args.subject} -> {args.explainer}: {len(maps['shared'])} layer pairs, "
        f"{args.texts or 'all'} shared texts, {args.repeats} repeat(s)"
    )
    for name in ("per_pair", "shared"):
        values = timings[name]
        print(
            f"  {name:9s} {statistics.median(values):8.1f} s "
            f"(min {min(values):.1f}, max {max(values):.1f})  forward passes {passes[name]}"
        )
    ratio = statistics.median(timings["per_pair"]) / statistics.median(timings["shared"])
    print(f"  per_pair / shared: {ratio:.2f}x   largest weight difference {difference:.2e}")


if __name__ == "__main__":
    main()
