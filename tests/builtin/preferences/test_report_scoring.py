"""Issue 16: decision-weight reports from any explainer, in the paper's CSV layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

from harness_plugins.builtin.preferences.report_scoring import read_weights_csv, score_reports_csv
from harness_plugins.builtin.preferences.weights_fit import A_COLUMNS, B_COLUMNS, fit_choices_csv
from harness_plugins.commands.cli import main
from harness_plugins.errors import IntrospectError

WEIGHTS = {
    "s1": [100, -50, 0, 20, -10],
    "s2": [-30, 80, 40, 0, 10],
    "s3": [5, 5, -100, 60, 0],
    "s4": [0, -20, 30, 90, -70],
}


def _files(tmp_path):
    weights = tmp_path / "weights.csv"
    pd.DataFrame(
        [{"scenario": s, **{f"attr{k + 1}": w[k] for k in range(5)}} for s, w in WEIGHTS.items()]
    ).to_csv(weights, index=False)
    rng = np.random.default_rng(0)
    rows = []
    for model, noise in (("good", 10.0), ("noisy", 80.0)):
        for scenario, w in WEIGHTS.items():
            for version in range(10):
                report = np.round(np.asarray(w) + rng.normal(0, noise, 5))
                row = {"explaining_model": model, "version": version, "scenario": scenario}
                row.update({f"report_attr{k + 1}": report[k] for k in range(5)})
                row.update({c: 1 for c in (*A_COLUMNS, *B_COLUMNS)})
                rows.append(row)
    rows[0]["report_attr3"] = "n/a"  # one unparsed report of "good"
    reports = tmp_path / "reports.csv"
    pd.DataFrame(rows).to_csv(reports, index=False)
    return reports, weights, pd.DataFrame(rows)


def _by_hand(frame, model):
    own = frame[frame["explaining_model"] == model].copy()
    columns = [f"report_attr{k}" for k in range(1, 6)]
    own[columns] = own[columns].apply(pd.to_numeric, errors="coerce")
    own = own.dropna(subset=columns)
    means = own.groupby("scenario")[columns].mean()
    x = np.concatenate([means.loc[s].to_numpy() for s in WEIGHTS])
    y = np.concatenate([WEIGHTS[s] for s in WEIGHTS])
    return pearsonr(x, y).statistic, np.abs(x - y).mean()


def test_score_reproduces_the_hand_computed_r(tmp_path, capsys):
    reports, weights, frame = _files(tmp_path)
    scores = {s.model: s for s in score_reports_csv(reports, weights, resamples=200)}
    for model in ("good", "noisy"):
        r, mae = _by_hand(frame, model)
        assert scores[model].pearson_r == pytest.approx(r, abs=1e-9)
        assert scores[model].mean_abs_error == pytest.approx(mae, abs=1e-9)
        assert scores[model].ci_low <= scores[model].pearson_r <= scores[model].ci_high
    assert scores["good"].parse_rate == pytest.approx(39 / 40)
    assert scores["noisy"].parse_rate == 1.0
    assert scores["good"].pearson_r > scores["noisy"].pearson_r
    assert main(["preferences", "score", "--reports", str(reports), "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    assert f"good\t4\t40\t0.975\t{scores['good'].pearson_r:.3f}" in out
    assert "noisy\t4\t40\t1.000" in out


def test_learned_weights_from_fit_are_accepted(tmp_path):
    learned = tmp_path / "learned.csv"
    pd.DataFrame(
        [{"scenario": s, **{f"weight_{k + 1}": w[k] for k in range(5)}} for s, w in WEIGHTS.items()]
    ).to_csv(learned, index=False)
    assert read_weights_csv(learned)["", "s3"] == [5, 5, -100, 60, 0]
    bad = tmp_path / "bad.csv"
    bad.write_text("scenario,a,b\ns1,1,2\n")
    with pytest.raises(IntrospectError, match=r"needs columns scenario and attr1\.\.5"):
        read_weights_csv(bad)


def test_fit_groups_choices_by_model(tmp_path):
    rows = []
    for model, sign in (("m1", 1.0), ("m2", -1.0)):
        for i in range(40):
            a = [float((i * 7 + k) % 10) for k in range(5)]
            b = [float((i * 3 + 2 * k) % 10) for k in range(5)]
            better_a = sign * (a[0] - b[0]) >= 0
            rows.append(
                {
                    "model": model,
                    "scenario": "s",
                    "selection": "A" if better_a else "B",
                    **dict(zip(A_COLUMNS, a, strict=True)),
                    **dict(zip(B_COLUMNS, b, strict=True)),
                }
            )
    path = tmp_path / "choices.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    fitted = fit_choices_csv(path, {"s": [(0, 10)] * 5})
    assert list(fitted["model"]) == ["m1", "m2"] and list(fitted["n_choices"]) == [40, 40]
    assert fitted.iloc[0]["weight_1"] == 100.0 and fitted.iloc[1]["weight_1"] == -100.0


def test_instilled_reference_accepts_a_weights_csv(tmp_path):
    from harness_plugins.references import ReferencePipeline

    _, weights, _ = _files(tmp_path)
    pipeline = ReferencePipeline(
        "preferences",
        {
            "pretrained": "smollm2-135m-instruct",
            "reference": "instilled",
            "instilled_weights": str(weights),
        },
        model_arguments=["pretrained"],
    )
    assert len(pipeline.questions()) > 0  # built-in scenarios: no adapter needed
    bad = tmp_path / "bad.csv"
    bad.write_text("scenario,attr1\n")
    with pytest.raises(IntrospectError, match="needs columns"):
        ReferencePipeline(
            "preferences",
            {
                "pretrained": "smollm2-135m-instruct",
                "reference": "instilled",
                "instilled_weights": str(bad),
            },
            model_arguments=["pretrained"],
        )
