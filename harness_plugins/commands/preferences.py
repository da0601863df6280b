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
    models = f" of {frame['model'].nunique()} models" if "model" in frame.columns else ""
    print(
        f"fitted {len(frame)} scenarios{models} from {args.choices} ({int(frame['n_choices'].sum())} choices); "
        f"mean held-out agreement {usable['agreement'].mean():.3f}; wrote {args.out}"
    )
    return 0


def cmd_preferences_score(args: argparse.Namespace) -> int:
    from harness_plugins.builtin.preferences.report_scoring import score_reports_csv

    scores = score_reports_csv(args.reports, args.weights, resamples=args.resamples, seed=args.seed)
    print("model\tscenarios\treports\tparse_rate\tpearson_r\tci95\tmean_abs_error")
    for s in scores:
        print(
            f"{s.model}\t{s.scenarios}\t{s.reports}\t{s.parse_rate:.3f}\t{s.pearson_r:.3f}\t"
            f"[{s.ci_low:.3f}, {s.ci_high:.3f}]\t{s.mean_abs_error:.2f}"
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
        help="CSV: [model,] scenario, selection, A_attribute_1..5, B_attribute_1..5 "
        "(several models are fitted separately)",
    )
    fit.add_argument("--out", required=True, help="CSV to write: one row of weights per scenario")
    fit.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic fit")
    fit.set_defaults(func=cmd_preferences_fit)
    score = pref.add_parser(
        "score", help="score an explainer's weight reports (the paper's CSV) against weights"
    )
    score.add_argument(
        "--reports",
        required=True,
        help="CSV: explaining_model, version, scenario, report_attr1..5 (reports are averaged)",
    )
    score.add_argument(
        "--weights",
        required=True,
        help="CSV: scenario, attr1..5 (instilled) or the output of `preferences fit`",
    )
    score.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    score.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    score.set_defaults(func=cmd_preferences_score)
