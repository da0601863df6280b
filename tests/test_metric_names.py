"""Metric names: every form the types write parses back to what was written; others don't."""

from __future__ import annotations

import pytest

from harness_plugins.metric_names import (
    CellMetric,
    LayerMetric,
    PairMetric,
    ResultKey,
    cell_metric,
    cell_suffix,
    display_name,
    is_breakdown,
    layer_metric,
    pair_metric,
    parse_breakdown,
    parse_cell_metric,
    parse_cell_suffix,
    parse_layer_metric,
    parse_pair_metric,
    parse_result_key,
    result_key,
    split_result_key,
    stderr_key,
)


@pytest.mark.parametrize(
    ("measure", "layer", "name"),
    [("p_at_1", 5, "p_at_1_layer05"), ("logit_lens_surprisal", 0, "logit_lens_surprisal_layer00"),
     ("accuracy", 123, "accuracy_layer123")],
)  # fmt: skip
def test_layer_names_round_trip(measure, layer, name):
    assert layer_metric(measure, layer) == name
    assert parse_layer_metric(name) == LayerMetric(measure, layer)
    assert parse_breakdown(name) == LayerMetric(measure, layer)
    assert str(LayerMetric(measure, layer)) == name


@pytest.mark.parametrize(
    ("source", "target", "name"),
    [(3, 7, "accuracy_src03_tgt07"), (0, 0, "accuracy_src00_tgt00"),
     (12, 101, "accuracy_src12_tgt101")],
)  # fmt: skip
def test_pair_names_round_trip(source, target, name):
    assert pair_metric("accuracy", source, target) == name
    assert parse_pair_metric(name) == PairMetric("accuracy", source, target)
    assert parse_breakdown(name) == PairMetric("accuracy", source, target)
    assert parse_layer_metric(name) is None


@pytest.mark.parametrize(
    ("measure", "layer", "strength", "name"),
    [("hit_rate", 6, 4.0, "hit_rate_L06_s4"), ("identification_rate", 10, 0.5,
      "identification_rate_L10_s0p5"), ("coherence_rate", 2, 2.25, "coherence_rate_L02_s2p25"),
     ("hit_rate", 1, 1e-05, "hit_rate_L01_s1e-05"), ("hit_rate", 3, 16.0, "hit_rate_L03_s16")],
)  # fmt: skip
def test_cell_names_round_trip(measure, layer, strength, name):
    assert cell_metric(measure, layer, strength) == name
    assert parse_cell_metric(name) == CellMetric(measure, layer, strength)
    assert parse_breakdown(name) == CellMetric(measure, layer, strength)
    suffix = cell_suffix(layer, strength)
    assert name.endswith("_" + suffix) and parse_cell_suffix(suffix) == (layer, strength)


@pytest.mark.parametrize(
    "name",
    ["p_at_1", "_layer05", "p_at_1_layer", "p_at_1_layerx5", "p_at_1_layer05_stderr",
     "p_at_1_layer-1", "accuracy_src03", "accuracy_src03_tgt", "_src01_tgt02",
     "hit_rate_L06", "hit_rate_L06_s", "hit_rate_Lx_s4", "hit_rate_L06_s4.5", "_L06_s4",
     "hit_rate_l06_s4", "best_layer", "false_alarm_rate", "layer05", ""],
)  # fmt: skip
def test_summary_and_malformed_names_are_no_breakdown(name):
    assert parse_breakdown(name) is None and not is_breakdown(name)


def test_bad_parts_are_refused_when_writing():
    for write in (lambda: layer_metric("", 1), lambda: layer_metric("x", -1),
                  lambda: pair_metric("x", 1, -2), lambda: cell_metric("x", 1, float("nan")),
                  lambda: cell_metric("x", 1, -1.0), lambda: cell_metric("", 1, 2.0)):  # fmt: skip
        with pytest.raises(ValueError):
            write()


def test_result_keys_round_trip():
    assert result_key("acc") == "acc,none"
    assert result_key("exact_match", "strict-match") == "exact_match,strict-match"
    assert stderr_key("acc", "none") == "acc_stderr,none"
    for key in ("acc,none", "acc_stderr,none", "p_at_1_layer05_stderr,flex", "x,y,z"):
        parsed = parse_result_key(key)
        assert parsed is not None and str(parsed) == key
    assert parse_result_key("acc_stderr,none") == ResultKey("acc", "none", stderr=True)
    assert parse_result_key("p_at_1_layer05,none") == ResultKey("p_at_1_layer05", "none")
    assert split_result_key("acc,none") == ("acc", "none")


@pytest.mark.parametrize("key", ["alias", "name", ",none", "acc,", 3, None, "sample_len"])
def test_non_metric_keys_do_not_parse(key):
    assert parse_result_key(key) is None


def test_display_name_hides_only_the_default_filter():
    assert display_name("acc", "none") == "acc"
    assert display_name("acc", "strict") == "acc,strict"
