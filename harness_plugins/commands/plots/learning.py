"""``introspect train curve``: the learning curve of a trained explainer as a PNG.

Reads ``learning_curve.json`` (written by ``introspect train explainer --eval_steps N``,
beside the adapter, or in its ``.NAME.training`` folder while it trains) and draws the
held-out loss and the held-out metrics against the training step, one panel each.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError


def plot_learning_curve(curve: dict[str, Any], out: Path, title: str = "") -> Path:
    """Held-out loss (left) and metrics (right) against the step; returns the file written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve.get("points") or []
    if not points:
        raise IntrospectError("the learning curve has no points: train with --eval_steps N")
    steps = [p["step"] for p in points]
    metrics = list(dict.fromkeys(name for p in points for name in p["metrics"]))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(steps, [p["heldout_loss"] for p in points], marker="o")
    left.set_xlabel("step")
    left.set_ylabel("held-out loss")
    main = curve.get("metric")
    for name in metrics:
        values = [(p["step"], p["metrics"][name]) for p in points if name in p["metrics"]]
        right.plot(
            [s for s, _ in values],
            [v for _, v in values],
            marker="o",
            linewidth=2.5 if name == main else 1.0,
            label=name,
        )
    right.set_xlabel("step")
    right.set_ylabel("held-out metric")
    if metrics:
        right.legend(fontsize="small")
    sizes = ", ".join(f"{k} {v}" for k, v in (curve.get("heldout") or {}).items())
    figure.suptitle(title or f"learning curve (held-out train slice: {sizes})")
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def run(args: argparse.Namespace) -> int:
    from harness_plugins.training.watch import read_curve

    source = Path(args.curve)
    out = (
        Path(args.out)
        if args.out
        else (source if source.is_dir() else source.parent) / ("learning_curve.png")
    )
    written = plot_learning_curve(read_curve(source), out, args.title or "")
    print(f"learning curve: {written}")
    return 0


def add_command(actions: Any, formatter: Any) -> None:
    """The ``curve`` action under ``introspect train``."""
    curve = actions.add_parser(
        "curve",
        help="plot an explainer's learning curve (held-out loss and metric vs step)",
        formatter_class=formatter,
    )
    curve.add_argument("curve", help="adapter folder, or its learning_curve.json")
    curve.add_argument("--out", help="PNG to write (default: learning_curve.png beside the curve)")
    curve.add_argument("--title", help="figure title")
    curve.set_defaults(func=run)
