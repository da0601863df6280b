"""Learned decision weights: recovery of known weights from simulated choices, CSV input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from sklearn.linear_model import LogisticRegression

from harness_plugins.builtin.preferences.weights_fit import (
    A_COLUMNS,
    B_COLUMNS,
    WeightFit,
    fit_choices_csv,
    fit_weights,
    instilled_choice,
    instilled_weights,
    normalised_differences,
    rescale,
    utility,
    write_weights_csv,
)
from harness_plugins.errors import IntrospectError

SCENARIOS = 20
PAIRS = 300
SCALE = 5.0  # P(A) = sigmoid(SCALE * (U_A - U_B) / 100): noisy (~83% optimal) but informative
RECOVERY_R = 0.9
MIN_AGREEMENT = 0.7


def _ranges(rng: np.random.Generator) -> list[tuple[float, float]]:
    low = rng.uniform(-50, 50, size=5)
    return [
        (float(lo), float(lo + span)) for lo, span in zip(low, rng.uniform(1, 500, 5), strict=True)
    ]


def _bounds(pairs):
    array = np.asarray(pairs, dtype=float)
    return array[:, 0], array[:, 1]


def _simulate(rng, pairs, weights, bias=0.0, n=PAIRS):
    """Option pairs uniform in the ranges and the subject's probability of choosing A."""
    low, high = _bounds(pairs)
    a = rng.uniform(low, high, size=(n, 5))
    b = rng.uniform(low, high, size=(n, 5))
    du = normalised_differences(a, b, low, high) @ np.asarray(weights)
    return a, b, expit(SCALE * du / 100 + bias)


def _pearson(truth, recovered) -> float:
    return float(np.corrcoef(np.ravel(truth), np.ravel(recovered))[0, 1])


def _write_choices(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """20 scenarios of hard A/B choices in the paper's CSV layout, plus the true weights."""
    rng = np.random.default_rng(2025)
    ranges, truth, rows = {}, {}, []
    for s in range(SCENARIOS):
        name = f"scenario_{s:02d}"
        ranges[name] = _ranges(rng)
        truth[name] = instilled_weights(rng)
        a, b, p = _simulate(rng, ranges[name], truth[name])
        chose_a = rng.random(PAIRS) < p
        for i in range(PAIRS):
            row = {"model": "subject-x", "scenario": name, "selection": "A" if chose_a[i] else "B"}
            row.update(zip(A_COLUMNS, a[i], strict=True))
            row.update(zip(B_COLUMNS, b[i], strict=True))
            rows.append(row)
    path = _write_choices(tmp_path_factory.mktemp("choices") / "choices.csv", rows)
    ranges["unused_scenario"] = [(0.0, 1.0)] * 5  # the scenarios file may hold more
    return path, ranges, truth


def test_csv_fit_recovers_instilled_weights(simulated):
    path, ranges, truth = simulated
    fitted = fit_choices_csv(path, ranges)
    assert list(fitted["scenario"]) == sorted(truth)  # first appearance; unused one absent
    assert list(fitted.columns) == [
        "scenario",
        *(f"weight_{k}" for k in range(1, 6)),
        "agreement",
        "n_choices",
        "degenerate",
    ]
    recovered = fitted[[f"weight_{k}" for k in range(1, 6)]].to_numpy()
    r = _pearson([truth[s] for s in fitted["scenario"]], recovered)
    assert r > RECOVERY_R, r  # measured 0.992; agreement min 0.79, mean 0.84
    assert np.allclose(np.abs(recovered).max(axis=1), 100)
    assert (fitted["agreement"] > MIN_AGREEMENT).all(), fitted["agreement"].min()
    assert (fitted["n_choices"] == PAIRS).all() and not fitted["degenerate"].any()


def test_names_columns_follow_the_scenarios_file(simulated):
    path, ranges, _ = simulated
    names = {s: [f"{s}-attr{k}" for k in range(1, 6)] for s in ranges}
    fitted = fit_choices_csv(path, ranges, names=names)
    assert list(fitted.columns[-5:]) == [f"name_{k}" for k in range(1, 6)]
    first = fitted.iloc[0]
    assert [first[f"name_{k}"] for k in range(1, 6)] == names[first["scenario"]]


def test_soft_probabilities_recover_weights():
    rng = np.random.default_rng(7)
    truth, recovered = [], []
    for _ in range(SCENARIOS):
        pairs, weights = _ranges(rng), instilled_weights(rng)
        a, b, p = _simulate(rng, pairs, weights)
        p = expit(np.log(p / (1 - p)) + rng.normal(0, 0.5, PAIRS))  # a noisy reporter
        fit = fit_weights(normalised_differences(a, b, *_bounds(pairs)), p)
        assert not fit.degenerate and fit.agreement > MIN_AGREEMENT
        truth.append(weights)
        recovered.append(fit.weights)
    r = _pearson(truth, recovered)
    assert r > RECOVERY_R, r  # measured 0.999


def test_position_bias_lands_in_the_intercept():
    rng = np.random.default_rng(11)
    truth, recovered = [], []
    for _ in range(SCENARIOS):
        pairs, weights = _ranges(rng), instilled_weights(rng)
        a, b, p = _simulate(rng, pairs, weights, bias=1.5)
        chose_a = (rng.random(PAIRS) < p).astype(float)
        assert chose_a.mean() > 0.6
        fit = fit_weights(normalised_differences(a, b, *_bounds(pairs)), chose_a)
        assert fit.intercept > 0.5
        truth.append(weights)
        recovered.append(fit.weights)
    r = _pearson(truth, recovered)
    assert r > RECOVERY_R, r  # measured 0.993


def test_l2_is_sklearn_inverse_c_and_a_normal_prior_on_slopes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 5))
    p = expit(x @ np.array([2.0, -1.0, 0.5, 0.0, 1.0]) + 0.3)
    hard = (rng.random(80) < p).astype(float)
    for l2 in (0.25, 1.0, 4.0):
        ours = fit_weights(x, hard, l2=l2)
        theirs = LogisticRegression(C=1 / l2).fit(x, hard)
        assert np.allclose(ours.coefficients, theirs.coef_[0], atol=1e-3)
        assert ours.intercept == pytest.approx(theirs.intercept_[0], abs=1e-3)

    # Soft targets: MAP of sum CE(p, sigmoid(b + w.x)) + l2/2 ||w||^2, intercept unpenalised.
    def objective(theta, l2):
        z = theta[0] + x @ theta[1:]
        return -np.sum(p * log_expit(z) + (1 - p) * log_expit(-z)) + l2 / 2 * theta[1:] @ theta[1:]

    for l2 in (0.5, 2.0):
        best = minimize(objective, np.zeros(6), args=(l2,), method="BFGS", tol=1e-10).x
        fit = fit_weights(x, p, l2=l2)
        assert np.allclose(fit.coefficients, best[1:], atol=1e-3)
        assert fit.intercept == pytest.approx(best[0], abs=1e-3)


def test_rescale():
    assert rescale([0.5, -2.0, 0.0, 1.0, 0.25]) == (25.0, -100.0, 0.0, 50.0, 12.5)
    assert rescale([3.0, 0.0]) == (100.0, 0.0)
    assert rescale([0.0, 0.0, 0.0]) == (0.0, 0.0, 0.0)
    rng = np.random.default_rng(0)
    raw = rng.normal(size=5)
    scaled = np.array(rescale(raw))
    assert np.max(np.abs(scaled)) == pytest.approx(100)
    assert np.array_equal(np.sign(scaled), np.sign(raw))


@pytest.mark.parametrize("constant", [0.0, 1.0, 0.7])
def test_identical_choices_are_degenerate(constant):
    fit = fit_weights(np.random.default_rng(0).normal(size=(40, 5)), np.full(40, constant))
    assert isinstance(fit, WeightFit) and fit.degenerate and fit.n == 40
    assert fit.weights == (0.0,) * 5 and fit.coefficients == (0.0,) * 5
    assert math.isnan(fit.agreement)
    expected = {0.0: -math.inf, 1.0: math.inf}.get(constant, math.log(0.7 / 0.3))
    assert fit.intercept == pytest.approx(expected)


def test_soft_labels_on_one_side_still_fit():
    """All hard choices A, but p_a varies with the attributes: fitted, agreement undefined."""
    x = np.random.default_rng(1).normal(size=(60, 5))
    p = 0.5 + 0.49 * expit(2 * x[:, 0] - x[:, 2])
    fit = fit_weights(x, p)
    assert not fit.degenerate and math.isnan(fit.agreement)
    assert fit.weights[0] == 100.0 and fit.weights[2] < 0


def test_single_class_scenario_in_csv_is_degenerate(tmp_path):
    rows = [
        {
            "scenario": "s",
            "selection": "A",
            **dict.fromkeys(A_COLUMNS, i),
            **dict.fromkeys(B_COLUMNS, 1),
        }
        for i in range(5)
    ]
    fitted = fit_choices_csv(_write_choices(tmp_path / "c.csv", rows), {"s": [(0, 10)] * 5})
    row = fitted.iloc[0]
    assert bool(row["degenerate"]) and math.isnan(row["agreement"]) and row["n_choices"] == 5
    assert [row[f"weight_{k}"] for k in range(1, 6)] == [0.0] * 5


def test_instilled_choice_follows_utility():
    low, high = [0, 10, -5, 100, 0], [1, 20, 5, 300, 50]
    weights = instilled_weights(np.random.default_rng(5))
    assert max(abs(w) for w in weights) == 100
    assert all(-100 <= w <= 100 for w in weights)
    assert utility(low, low, high, weights) == 0.0
    assert utility(high, low, high, weights) == pytest.approx(sum(weights))
    rng = np.random.default_rng(6)
    for _ in range(200):
        a, b = rng.uniform(low, high), rng.uniform(low, high)
        better = "A" if utility(a, low, high, weights) > utility(b, low, high, weights) else "B"
        assert instilled_choice(a, b, low, high, weights) == better
    assert instilled_choice(low, low, low, high, weights) == "A"  # ties go to A
    assert utility([0.5, 15, 0, 200, 25], low, high, [100, 0, 0, 0, 0]) == pytest.approx(50)


def _good_rows(n=4):
    return [
        {
            "scenario": "s",
            "selection": "AB"[i % 2],
            **{c: float(i + k) for k, c in enumerate(A_COLUMNS)},
            **{c: float(k) for k, c in enumerate(B_COLUMNS)},
        }
        for i in range(n)
    ]


def _assert_one_line(error: pytest.ExceptionInfo, path: Path, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_columns_are_listed(tmp_path):
    frame = pd.DataFrame(_good_rows()).drop(columns=["selection", "B_attribute_3"])
    path = tmp_path / "missing.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(IntrospectError) as error:
        fit_choices_csv(path, {"s": [(0, 10)] * 5})
    _assert_one_line(error, path, "missing required column", "selection", "B_attribute_3")


def test_bad_selection_names_the_row(tmp_path):
    rows = _good_rows()
    rows[2]["selection"] = "C"
    path = _write_choices(tmp_path / "selection.csv", rows)
    with pytest.raises(IntrospectError) as error:
        fit_choices_csv(path, {"s": [(0, 10)] * 5})
    _assert_one_line(error, path, "row 3 (line 4)", "'C'", "A or B")


def test_unknown_scenario_names_it(tmp_path):
    rows = _good_rows()
    rows[1]["scenario"] = "mystery"
    path = _write_choices(tmp_path / "scenario.csv", rows)
    with pytest.raises(IntrospectError) as error:
        fit_choices_csv(path, {"s": [(0, 10)] * 5, "other": [(0, 1)] * 5})
    _assert_one_line(error, path, "'mystery'", "not in the scenarios file")


def test_non_numeric_attribute_names_row_and_column(tmp_path):
    rows = _good_rows()
    rows[3]["A_attribute_4"] = "lots"
    path = _write_choices(tmp_path / "numeric.csv", rows)
    with pytest.raises(IntrospectError) as error:
        fit_choices_csv(path, {"s": [(0, 10)] * 5})
    _assert_one_line(error, path, "row 4 (line 5)", "A_attribute_4", "'lots'", "non-numeric")


def test_empty_attribute_is_non_numeric(tmp_path):
    rows = _good_rows()
    rows[0]["B_attribute_1"] = ""
    path = _write_choices(tmp_path / "empty.csv", rows)
    with pytest.raises(IntrospectError) as error:
        fit_choices_csv(path, {"s": [(0, 10)] * 5})
    _assert_one_line(error, path, "row 1 (line 2)", "B_attribute_1")


def test_bad_ranges_name_the_scenario(tmp_path):
    path = _write_choices(tmp_path / "ranges.csv", _good_rows())
    for bad in ([(0, 10)] * 4, [(0, 10)] * 4 + [(5, 5)]):
        with pytest.raises(IntrospectError) as error:
            fit_choices_csv(path, {"s": bad})
        _assert_one_line(error, path, "'s'")


def test_missing_file_is_one_line(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(IntrospectError) as error:
        fit_choices_csv(path, {})
    _assert_one_line(error, path, "not found")


def test_write_weights_csv_is_atomic(tmp_path, simulated):
    path, ranges, _ = simulated
    fitted = fit_choices_csv(path, ranges)
    target = tmp_path / "out" / "weights.csv"
    write_weights_csv(fitted, target)
    write_weights_csv(fitted, target)  # replaces an existing file
    assert [p.name for p in target.parent.iterdir()] == ["weights.csv"]
    back = pd.read_csv(target)
    assert list(back.columns) == list(fitted.columns)
    assert np.allclose(back["weight_1"], fitted["weight_1"])
