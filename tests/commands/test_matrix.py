"""``introspect matrix`` labels: an adapter on the subject's base is self; gaps compare like with like."""

from __future__ import annotations

from harness_plugins.commands.matrix import Cell, ModelChoice, pair_mode, self_cross_gaps


def test_pair_mode_by_base_weights():
    base, tuned = ModelChoice.parse("m"), ModelChoice.parse("m+/adapters/a")
    assert pair_mode(base, base) == "self"
    assert pair_mode(tuned, base) == "self"
    assert pair_mode(ModelChoice.parse("o"), base) == "cross"
    assert pair_mode(base, tuned) == "cross"


def cell(explainer: str, mode: str, value: float) -> Cell:
    return Cell(explainer, "m", mode, "t", "acc", value, 0.01, "ok")


def test_each_self_explainer_gets_its_own_gap_against_the_cross_mean():
    cells = [
        cell("m", "self", 0.6),
        cell("m+a", "self", 0.9),
        cell("o1", "cross", 0.4),
        cell("o2", "cross", 0.2),
    ]
    gaps = {g["explainer"]: g for g in self_cross_gaps(cells)}
    assert set(gaps) == {"m", "m+a"}
    assert round(gaps["m"]["gap"], 9) == 0.3 and round(gaps["m+a"]["gap"], 9) == 0.6
    assert gaps["m"]["cross_explainers"] == 2
