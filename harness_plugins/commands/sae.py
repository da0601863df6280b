"""``introspect sae train``: a small SAE on a subject's residual stream, saved as sae-lens saves."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_sae_train(args: argparse.Namespace) -> int:
    from harness_plugins.training.sae import SaeTrainingConfig, train_sae

    config = SaeTrainingConfig(
        layer=args.layer,
        width=args.width,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        l1=args.l1,
        window=args.window,
        corpus=args.corpus,
        seed=args.seed,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None,
    )
    name = Path(args.subject).name or args.subject
    out = Path(args.out or f"sae-{name}-layer{args.layer}-width{args.width}")
    record = train_sae(args.subject, out, config)
    print(
        f"saved {out} ({record['steps']} steps, {record['seconds']} s, {record['tokens']} tokens): "
        f"held-out MSE {record['held_out_mse_before']} -> {record['held_out_mse_after']}, "
        f"FVU {record['fraction_variance_unexplained']}, L0 {record['l0']}\n"
        f"evaluate: lm_eval --model introspect --model_args pretrained={args.subject} "
        f'--tasks introspect_features --metadata \'{{"source": "sae", "sae": "{out}"}}\''
    )
    return 0


def add_commands(sub: Any) -> None:
    from harness_plugins.commands.train import DefaultsHelpFormatter
    from harness_plugins.commands.train_arguments import add_option

    sae = sub.add_parser("sae", help="sparse autoencoders: train one offline")
    actions = sae.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train",
        help="train a ReLU SAE on a subject's residual stream (sae-lens folder layout)",
        formatter_class=DefaultsHelpFormatter,
    )
    train.add_argument("--subject", required=True, help="model alias, local folder or Hub id")
    train.add_argument(
        "--layer", type=int, required=True, help="block whose output is read (-1: the middle one)"
    )
    train.add_argument("--width", type=int, required=True, help="number of SAE features")
    train.add_argument("--out", help="folder to write (default: sae-SUBJECT-layerL-widthN)")
    train.add_argument("--steps", type=int, default=3000, help="Adam steps")
    add_option(train, "batch_size", type=int, default=512, help="tokens per step")
    add_option(train, "learning_rate", type=float, default=1e-3, help="Adam learning rate")
    train.add_argument("--l1", type=float, default=5.0, help="sparsity penalty weight")
    train.add_argument("--window", type=int, default=64, help="tokens per corpus window")
    train.add_argument("--corpus", help=".txt or .jsonl corpus (default: the built-in sentences)")
    train.add_argument("--seed", type=int, default=0, help="seed of initialisation and batches")
    add_option(train, "max_minutes", type=float, help="stop training after this long")
    train.set_defaults(func=cmd_sae_train)
