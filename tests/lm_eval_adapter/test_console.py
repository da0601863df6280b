"""lm-eval's console table keeps the summary metrics; per-layer rows go to JSON, W&B, plots."""

from __future__ import annotations

from harness_plugins.lm_eval_adapter.console import patch_console_table


def results() -> dict:
    metrics = {"alias": "introspect_patchscope_next_token", "p_at_1,none": 0.5}
    metrics["p_at_1_stderr,none"] = 0.1
    for layer in range(30):
        metrics[f"p_at_1_layer{layer:02d},none"] = 0.4
        metrics[f"p_at_1_layer{layer:02d}_stderr,none"] = 0.1
    task = "introspect_patchscope_next_token"
    record = {"mode": "self", "subject": "m", "explainer": "m + peft a"}
    return {
        "configs": {task: {"metadata": {"introspect": record}}},
        "results": {task: metrics},
        "versions": {task: 1},
        "n-shot": {task: 0},
        "higher_is_better": {task: {"p_at_1": True}},
    }


def test_console_table_drops_layer_rows_and_says_where_they_are():
    from lm_eval import utils

    patch_console_table()
    data = results()
    table = utils.make_table(data)
    assert "|p_at_1|" in table and "layer" not in table.split("\n(")[0]
    assert "30 per-layer metrics are in the results JSON" in table
    assert "introspect_patchscope_next_token: mode self (explainer m + peft a, subject m)" in table
    assert len(data["results"]["introspect_patchscope_next_token"]) == 63  # JSON untouched
