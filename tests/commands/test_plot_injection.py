"""The injected-thoughts figure: hit rate per strength vs layer, false alarms dashed."""

from __future__ import annotations

from harness_plugins.commands.plots.injection import hit_rates, plot_injection

RESULTS = {
    "introspect_injected_thoughts": {
        "alias": "introspect_injected_thoughts",
        "hit_rate,none": 0.2,
        "false_alarm_rate,none": 0.1,
        "best_layer,none": 15.0,
        "best_strength,none": 4.0,
        "hit_rate_L10_s2,none": 0.0,
        "hit_rate_L15_s2,none": 0.1,
        "hit_rate_L10_s4,none": 0.2,
        "hit_rate_L15_s4,none": 0.5,
        "hit_rate_L15_s4_stderr,none": 0.1,
        "hit_rate_L10_s0p5,none": "N/A",
    },
    "introspect_features": {"label_match,none": 0.3},
}


def test_hit_rates_by_strength_and_layer():
    rates = hit_rates(RESULTS["introspect_injected_thoughts"])
    assert rates == {2.0: {10: 0.0, 15: 0.1}, 4.0: {10: 0.2, 15: 0.5}}


def test_writes_one_figure_per_injection_task(tmp_path):
    (path,) = plot_injection(RESULTS, tmp_path)
    assert path.name == "introspect_injected_thoughts__injection_by_layer.png"
    assert path.read_bytes().startswith(b"\x89PNG")
