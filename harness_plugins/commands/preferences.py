"""``introspect preferences``: decision-weight tools."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_preferences_fit(args: argparse.Namespace) -> int:
    from harness_plugins.builtin.preferences.scenarios import load_scenarios
    from harness_plugins.builtin.preferences.weights_fit import fit_choices_csv, write_weights_csv

    scenarios = load_scenarios(args.scenarios)
    ranges = {s.short_name: [(a.low, a.high) for a in s.attributes] for s in scenarios}
    names = {s.short_name: [a.name for a in s.attributes] for s in scenarios}
    frame = fit_choices_csv(args.choices, ranges, l2=args.l2, names=names)
    write_weights_csv(frame, args.out)
    usable = frame[~frame["degenerate"]]
    print(
        f"fitted {len(frame)} scenarios from {args.choices} ({int(frame['n_choices'].sum())} choices); "
        f"mean held-out agreement {usable['agreement'].mean():.3f}; wrote {args.out}"
    )
    return 0


def add_commands(sub: Any) -> None:
    preferences = sub.add_parser("preferences", help="decision-weight tools")
    pref = preferences.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = pref.add_parser("fit", help="fit decision weights to choices (the paper's estimator)")
    fit.add_argument(
        "--scenarios", required=True, help="scenarios JSON (may hold more scenarios than used)"
    )
    fit.add_argument(
        "--choices",
        required=True,
        help="CSV: scenario, selection, A_attribute_1..5, B_attribute_1..5",
    )
    fit.add_argument("--out", required=True, help="CSV to write: one row of weights per scenario")
    fit.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic fit")
    fit.set_defaults(func=cmd_preferences_fit)
