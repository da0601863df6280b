"""The explainer side: does ``--model introspect`` cost more than plain ``--model hf``?

    python benchmarks/explainer.py                         # introspect_input_ablation, SmolLM2
    python benchmarks/explainer.py --limit 32 --repeats 3 --batch-size 16

Each measurement is its own process (so that load time and peak resident set are that
run's alone, as ``/usr/bin/time -v`` reports them):

* ``prepare``: the task's requests for ``--limit`` documents, built once (references
  cached), written to a file, so that both models answer exactly the same requests;
* ``hf``: lm-eval's ``HFLM`` (what ``--model hf`` is) loads the model, then answers them;
* ``introspect``: lm-eval's ``--model introspect`` class, given the alias, the same;
* ``self``: a whole self-explanation run, ``lm_eval.simple_evaluate`` with ``--model
  introspect`` on an empty reference cache, so the ground truth is built in the process
  on the explainer's own weights (one loaded model, shared).

Printed: load seconds and request seconds (median, min-max over ``--repeats``), peak RSS,
and the targets: introspect / hf request time <= 1.1 (load time apart), and the
self-explanation run's peak RSS <= 1.2x that of one model answering the requests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_support import empty_reference_cache  # noqa: E402

REQUEST_RATIO = 1.1
RSS_RATIO = 1.2


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="introspect_input_ablation")
    parser.add_argument("--limit", type=int, default=16, help="documents evaluated")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="processes per measurement")
    parser.add_argument("--child", choices=("prepare", "hf", "introspect", "self"))
    parser.add_argument("--requests", help="(child) the prepared requests file")
    return parser.parse_args(argv)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_arguments(args: argparse.Namespace, pretrained: str) -> dict[str, Any]:
    return {
        "pretrained": pretrained,
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "device": args.device,
    }


def _answer(lm: Any, requests: list[list[Any]]) -> None:
    """Send the requests to ``lm`` grouped by type, as lm-eval's evaluator does."""
    from lm_eval.api.instance import Instance

    kinds: dict[str, list[Any]] = {}
    for index, (kind, arguments) in enumerate(requests):
        instance = Instance(request_type=kind, doc={}, arguments=tuple(arguments), idx=index)
        kinds.setdefault(kind, []).append(instance)
    for kind, instances in kinds.items():
        getattr(lm, kind)(instances, disable_tqdm=True)


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement, in this process; returns what the parent prints."""
    import lm_eval

    if args.child == "prepare":
        from lm_eval.tasks import TaskManager, get_task_dict

        from ground_truth.subject import ModelSpec, resolve_source
        from harness_plugins.lm_eval_adapter.model import IntrospectLM
        from harness_plugins.registry import get_registry

        IntrospectLM(**_model_arguments(args, args.model))  # the live model the task reads
        metadata = {"pretrained": args.model, "dtype": args.dtype}
        task = get_task_dict([args.task], TaskManager(metadata=metadata))[args.task]
        task.build_all_requests(limit=args.limit, rank=0, world_size=1)
        requests = [[i.request_type, list(i.arguments)] for i in task.instances]
        # the alias's local folder, for plain lm-eval, which knows no aliases
        path = resolve_source(ModelSpec(args.model), get_registry().model_aliases).path
        Path(args.requests).write_text(json.dumps({"path": str(path), "requests": requests}))
        return {"requests": len(requests)}
    if args.child == "self":
        from harness_plugins.lm_eval_adapter import model as _registered  # noqa: F401

        started = time.perf_counter()
        lm_eval.simple_evaluate(
            model="introspect",
            model_args=_model_arguments(args, args.model),
            tasks=[args.task],
            limit=args.limit,
            verbosity="ERROR",
        )
        return {"total_s": time.perf_counter() - started, "peak_mib": _peak_rss_mib()}
    prepared = json.loads(Path(args.requests).read_text())
    requests = prepared["requests"]
    if args.child == "hf":  # plain lm-eval: nothing of this project imported
        from lm_eval.models.huggingface import HFLM

        started = time.perf_counter()
        lm = HFLM(**_model_arguments(args, prepared["path"]))
    else:
        from harness_plugins.lm_eval_adapter.model import IntrospectLM

        started = time.perf_counter()
        lm = IntrospectLM(**_model_arguments(args, args.model))
    loaded = time.perf_counter()
    load_mib = _peak_rss_mib()
    _answer(lm, requests)
    return {
        "load_s": loaded - started,
        "request_s": time.perf_counter() - loaded,
        "load_mib": load_mib,
        "peak_mib": _peak_rss_mib(),
    }


def spawn(args: argparse.Namespace, kind: str, requests: str, env: dict[str, str]) -> dict:
    """Run one child measurement and read back its JSON line."""
    command = [sys.executable, __file__, "--child", kind, "--requests", requests]
    for name in ("model", "task", "limit", "batch_size", "dtype", "device"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(f"child {kind} failed ({done.returncode}):\n{tail}")
    return json.loads(lines[-1])


def _summary(values: list[float]) -> str:
    return f"  {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    args = parse_arguments()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryDirectory() as folder:
        requests = str(Path(folder) / "requests.json")
        count = spawn(args, "prepare", requests, env)["requests"]
        print(
            f"{args.task}: {count} requests for {args.limit} documents, {args.model}, "
            f"{args.dtype} on {args.device}, batch {args.batch_size}, {args.repeats} repeats"
        )
        runs: dict[str, list[dict]] = {"hf": [], "introspect": [], "self": []}
        for repeat in range(args.repeats):
            # alternate which goes first, so that a drift in machine load favours neither
            for kind in ("hf", "introspect")[:: 1 if repeat % 2 == 0 else -1]:
                runs[kind].append(spawn(args, kind, requests, env))
            cache = empty_reference_cache(Path(folder) / f"cache{len(runs['self'])}")
            cold = {**env, "INTROSPECT_CACHE_DIR": str(cache)}
            runs["self"].append(spawn(args, "self", requests, cold))
    print(f"\n  {'run':<12}{'load s':>22}{'requests s':>22}{'peak RSS MiB':>22}")
    for kind in ("hf", "introspect"):
        rows = runs[kind]
        print(
            f"  {kind:<12}{_summary([r['load_s'] for r in rows]):>22}"
            f"{_summary([r['request_s'] for r in rows]):>22}"
            f"{_summary([r['peak_mib'] for r in rows]):>22}"
        )
    rows = runs["self"]
    print(
        f"  {'self (all)':<12}{'':>22}{_summary([r['total_s'] for r in rows]):>22}"
        f"{_summary([r['peak_mib'] for r in rows]):>22}"
    )
    print()
    median = {
        kind: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for kind, rows in runs.items()
    }
    ratio = median["introspect"]["request_s"] / median["hf"]["request_s"]
    verdict = "met" if ratio <= REQUEST_RATIO else "missed"
    print(f"requests: introspect / hf = {ratio:.3f} (target <= {REQUEST_RATIO}): {verdict}")
    load = median["introspect"]["load_s"] / median["hf"]["load_s"]
    print(f"load: introspect / hf = {load:.3f} (reported apart, no target)")
    ratio = median["self"]["peak_mib"] / median["hf"]["peak_mib"]
    verdict = "met" if ratio <= RSS_RATIO else "missed"
    print(
        f"peak RSS: self-explanation / one model = {ratio:.3f} (target <= {RSS_RATIO}): {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
