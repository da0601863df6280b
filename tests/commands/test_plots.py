"""Tests for ``introspect plot`` (harness_plugins/commands/plots/).

Results files are built in lm-eval 0.4.x's real output format: a top-level
"results" dict of task -> {"alias", "metric,filter", "metric_stderr,filter"},
plus "configs", "versions", "higher_is_better" and the run metadata lm-eval
writes around them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness_plugins.commands import plots

LAYERS = range(6)
PATCHSCOPE = "introspect_patchscope"
ABLATION = "introspect_input_ablation"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def p_at_1(layer: int) -> float:
    return round(0.1 + 0.12 * layer, 4)


def lens_p_at_1(layer: int) -> float:
    return round(0.05 + 0.06 * layer, 4)


def surprisal(layer: int) -> float:
    return round(6.0 - 0.7 * layer, 4)


def lens_surprisal(layer: int) -> float:
    return round(7.0 - 0.4 * layer, 4)


SERIES = {
    "p_at_1": p_at_1,
    "logit_lens_p_at_1": lens_p_at_1,
    "surprisal": surprisal,
    "logit_lens_surprisal": lens_surprisal,
}


def patchscope_entry() -> dict[str, Any]:
    """A per-layer task entry: 4 prefixes x 6 layers, p@1 with stderr, surprisal N/A."""
    entry: dict[str, Any] = {"name": PATCHSCOPE, "alias": PATCHSCOPE, "sample_len": 40}
    for prefix, fn in SERIES.items():
        for layer in LAYERS:
            entry[f"{prefix}_layer{layer:02d},none"] = fn(layer)
            stderr = 0.01 * (layer + 1) if "p_at_1" in prefix else "N/A"
            entry[f"{prefix}_layer{layer:02d}_stderr,none"] = stderr
    entry["valid,none"] = 0.95
    entry["valid_stderr,none"] = 0.02
    return entry


def ablation_entry(exact_match: float = 0.25) -> dict[str, Any]:
    """A scalar task entry like the one the SmolLM2 run wrote."""
    return {
        "name": ABLATION,
        "alias": ABLATION,
        "sample_len": 50,
        "exact_match,none": exact_match,
        "exact_match_stderr,none": 0.061,
        "content_match,none": 0.4,
        "content_match_stderr,none": 0.07,
        "changed_f1,none": 0.52,
        "changed_f1_stderr,none": "N/A",
        "valid,none": 0.98,
        "valid_stderr,none": 0.0199,
    }


def lm_eval_results(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A dict shaped like lm-eval's results_<timestamp>.json around ``tasks``."""
    hib: dict[str, dict[str, bool]] = {}
    for task, entry in tasks.items():
        metrics = {k.partition(",")[0] for k in entry if "," in k and "_stderr," not in k}
        hib[task] = {m: "surprisal" not in m for m in sorted(metrics)}
    return {
        "results": tasks,
        "group_subtasks": {task: [] for task in tasks},
        "configs": {
            task: {"task": task, "dataset_path": "introspect", "output_type": "generate_until"}
            for task in tasks
        },
        "versions": dict.fromkeys(tasks, "1"),
        "n-shot": dict.fromkeys(tasks, 0),
        "higher_is_better": hib,
        "n-samples": {task: {"original": 50, "effective": 50} for task in tasks},
        "config": {"model": "introspect", "model_args": "pretrained=smollm2-135m-instruct"},
        "git_hash": "ec57798",
        "date": 1763704672.0,
        "lm_eval_version": "0.4.13",
        "model_name": "smollm2-135m-instruct",
        "model_name_sanitized": "smollm2-135m-instruct",
    }


def write_results(path: Path, tasks: dict[str, dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lm_eval_results(tasks), indent=2), encoding="utf-8")
    return path


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    """lm_eval --output_path layout: <dir>/<model>/results_<timestamp>.json."""
    return write_results(
        tmp_path / "out" / "smollm2-135m-instruct" / "results_2026-11-21T05-59-03.670451.json",
        {PATCHSCOPE: patchscope_entry(), ABLATION: ablation_entry()},
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="introspect plot")
    plots.add_arguments(parser)
    return parser.parse_args(argv)


def run_plot(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = plots.run(parse(argv))
    return code, capsys.readouterr().out.splitlines()


def written(lines: list[str]) -> list[Path]:
    return [Path(line.removeprefix("wrote ")) for line in lines if line.startswith("wrote ")]


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width > 200 and height > 200
        dpi = image.info.get("dpi")
        assert dpi is not None and round(dpi[0]) == plots.DPI


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


# --------------------------------------------------------------------------- #
# Metric parsing and grouping
# --------------------------------------------------------------------------- #


def test_layer_metrics_reads_every_prefix_and_layer() -> None:
    series = plots.layer_metrics(patchscope_entry())
    assert set(series) == set(SERIES)
    for prefix, fn in SERIES.items():
        assert list(series[prefix]) == list(LAYERS)
        for layer in LAYERS:
            value, stderr = series[prefix][layer]
            assert value == fn(layer)
            if "p_at_1" in prefix:
                assert stderr == pytest.approx(0.01 * (layer + 1))
            else:
                assert stderr is None  # "N/A"


def test_layer_metrics_skips_scalars_na_values_and_keeps_filters() -> None:
    entry = {
        "alias": "t",
        "accuracy_layer03,none": 0.5,
        "accuracy_layer03_stderr,none": "N/A",
        "probe_accuracy_layer3,none": 0.7,
        "accuracy_layer10,none": "N/A",
        "accuracy_layer11,none": float("nan"),
        "valid,none": 1.0,
        "p_at_1_layer01,strict": 0.2,
        "p_at_1_layer01_stderr,strict": 0.01,
    }
    assert plots.layer_metrics(entry) == {
        "accuracy": {3: (0.5, None)},
        "probe_accuracy": {3: (0.7, None)},
        "p_at_1,strict": {1: (0.2, 0.01)},
    }
    assert plots.scalar_metrics(entry) == {"valid": (1.0, None)}


def test_scalar_metrics_skip_alias_stderr_and_na() -> None:
    entry = ablation_entry()
    entry["refusal_rate,none"] = "N/A"
    entry["refusal_rate_stderr,none"] = "N/A"
    assert plots.scalar_metrics(entry) == {
        "exact_match": (0.25, 0.061),
        "content_match": (0.4, 0.07),
        "changed_f1": (0.52, None),
        "valid": (0.98, 0.0199),
    }
    assert plots.scalar_metrics(patchscope_entry()) == {"valid": (0.95, 0.02)}


def test_group_measures_pairs_methods_with_baselines() -> None:
    prefixes = [
        "logit_lens_surprisal",
        "probe_accuracy",
        "surprisal",
        "logit_lens_p_at_1",
        "accuracy",
        "p_at_1",
        "other_thing",
    ]
    assert plots.group_measures(prefixes) == {
        "accuracy": ["accuracy", "probe_accuracy"],
        "other_thing": ["other_thing"],
        "p_at_1": ["p_at_1", "logit_lens_p_at_1"],
        "surprisal": ["surprisal", "logit_lens_surprisal"],
    }
    assert plots.measure_of("logit_lens_p_at_1") == "p_at_1"
    assert plots.measure_of("probe_accuracy") == "accuracy"
    assert plots.measure_of("logit_lens_p_at_1,strict") == "p_at_1,strict"
    assert [plots.method_label(p) for p in ("p_at_1", "logit_lens_p_at_1", "probe_accuracy")] == [
        "Patchscope",
        "logit lens",
        "probe",
    ]
    assert plots.method_label("logit_lens_p_at_1,strict") == "logit lens (strict)"
    # Without a baseline beside it, a bare prefix is labelled by its own name.
    assert plots.method_label("other_thing", paired=False) == "other_thing"
    assert plots.method_label("probe_accuracy", paired=False) == "probe"


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #


def test_layer_figure_lines_match_input() -> None:
    per_layer = plots.layer_metrics(patchscope_entry())
    prefixes = plots.group_measures(per_layer)["p_at_1"]
    figure = plots.layer_figure(PATCHSCOPE, "p_at_1", {p: per_layer[p] for p in prefixes})
    (ax,) = figure.axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["Patchscope", "logit lens"]
    for line, fn in zip(lines, (p_at_1, lens_p_at_1), strict=True):
        assert list(line.get_xdata()) == list(LAYERS)
        assert list(line.get_ydata()) == [fn(layer) for layer in LAYERS]
    assert len(ax.collections) == 2  # one stderr band per line
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [t for t in legend if not t.startswith("shaded")] == ["Patchscope", "logit lens"]
    assert "shaded: ± 1 stderr" in legend  # the band says what it is
    assert ax.get_xlabel() == "layer" and "p_at_1" in ax.get_title()


def test_bars_figure_values_errors_and_lower_is_better() -> None:
    tasks = {ABLATION: plots.scalar_metrics(ablation_entry())}
    hib = {ABLATION: {"exact_match": True, "changed_f1": False}}
    figure = plots.bars_figure(tasks, hib)
    (ax,) = figure.axes
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([0.25, 0.4, 0.52, 0.98])
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == ["exact_match", "content_match", "changed_f1 ↓", "valid"]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["0.25", "0.4", "0.52", "0.98"]
    assert "lower is better" in figure.get_suptitle()


# --------------------------------------------------------------------------- #
# The command
# --------------------------------------------------------------------------- #


def test_run_writes_layer_and_bar_pngs(
    results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run_plot([str(results_file)], capsys)
    assert code == 0
    out_dir = results_file.parent / "plots"
    expected = {
        out_dir / f"{PATCHSCOPE}__p_at_1_by_layer.png",
        out_dir / f"{PATCHSCOPE}__surprisal_by_layer.png",
        out_dir / "metrics_by_task.png",
    }
    assert set(written(lines)) == expected
    assert set(out_dir.iterdir()) == expected
    for path in expected:
        assert_png(path)
    assert lines[-1].startswith("introspect plot: 3 plots in ")
    assert "2 by-layer figures" in lines[-1]
    assert no_temp_files(results_file.parents[1])


def test_run_with_out_creates_nested_folder(
    results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "a" / "b" / "figs"
    code, lines = run_plot([str(results_file), "--out", str(out_dir)], capsys)
    assert code == 0
    assert all(path.parent == out_dir for path in written(lines))
    assert len(list(out_dir.glob("*.png"))) == 3
    assert not (results_file.parent / "plots").exists()
    # Running again replaces the files in place.
    code, lines = run_plot([str(results_file), "--out", str(out_dir)], capsys)
    assert code == 0 and len(list(out_dir.iterdir())) == 3


def test_probe_accuracy_shares_axes_with_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry: dict[str, Any] = {"alias": "introspect_probe"}
    for layer in LAYERS:
        entry[f"accuracy_layer{layer:02d},none"] = 0.5 + 0.05 * layer
        entry[f"probe_accuracy_layer{layer:02d},none"] = 0.6
    file = write_results(tmp_path / "results_2026-01-01T00-00-00.json", {"introspect_probe": entry})
    code, lines = run_plot([str(file)], capsys)
    assert code == 0
    assert written(lines) == [tmp_path / "plots" / "introspect_probe__accuracy_by_layer.png"]
    assert "no bar chart" in lines[-1]


def test_directory_picks_newest_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    newer = write_results(
        root / "model-a" / "results_2026-11-21T05-59-03.670451.json", {ABLATION: ablation_entry()}
    )
    older = write_results(
        root / "model-b" / "results_2026-11-20T10-00-00.000001.json",
        {PATCHSCOPE: patchscope_entry()},
    )
    # The older run was copied last (newer mtime): the timestamp in the name decides.
    os.utime(older, (newer.stat().st_mtime + 100, newer.stat().st_mtime + 100))
    (root / "model-a" / "samples_introspect_input_ablation_2026-11-21T05-59-03.jsonl").write_text(
        "{}\n"
    )
    code, lines = run_plot([str(root)], capsys)
    assert code == 0
    assert lines[0] == f"introspect plot: using results file {newer} (newest under {root})"
    assert written(lines) == [newer.parent / "plots" / "metrics_by_task.png"]
    assert plots.find_results_file(root) == newer


def test_several_files_combine_later_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_results(
        tmp_path / "run1" / "results_2026-01-01T00-00-00.json",
        {ABLATION: ablation_entry(exact_match=0.1), PATCHSCOPE: patchscope_entry()},
    )
    second = write_results(
        tmp_path / "run2" / "results_2026-01-02T00-00-00.json",
        {ABLATION: ablation_entry(exact_match=0.9)},
    )
    combined = plots.load_results([first, second])
    assert list(combined["results"]) == [ABLATION, PATCHSCOPE]
    assert combined["results"][ABLATION]["exact_match,none"] == 0.9
    assert combined["sources"] == {ABLATION: second, PATCHSCOPE: first}
    assert combined["files"] == [first, second]
    assert plots.load_results([second, first])["results"][ABLATION]["exact_match,none"] == 0.1

    code, lines = run_plot([str(first), str(second)], capsys)
    assert code == 0
    assert len(written(lines)) == 3
    assert all(p.parent == first.parent / "plots" for p in written(lines))
    assert lines[-1].endswith("from 2 results files")


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


def error_of(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        plots.run(parse(argv))
    message = str(info.value.code)
    assert message.startswith(plots.ERROR_PREFIX)
    assert "\n" not in message
    return message


def test_error_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert str(missing) in error_of([str(missing)])
    assert list(tmp_path.iterdir()) == []


def test_error_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "results_2026-01-01T00-00-00.json"
    bad.write_text('{"results": {\n  "x": oops\n', encoding="utf-8")
    message = error_of([str(bad)])
    assert str(bad) in message and "not valid JSON" in message
    assert not (tmp_path / "plots").exists()


def test_error_no_results_dict(tmp_path: Path) -> None:
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps([{"doc_id": 0}]), encoding="utf-8")
    message = error_of([str(samples)])
    assert str(samples) in message and '"results"' in message


def test_error_no_numeric_metrics(tmp_path: Path) -> None:
    file = write_results(
        tmp_path / "results_2026-01-01T00-00-00.json",
        {
            ABLATION: {
                "alias": ABLATION,
                "exact_match,none": "N/A",
                "exact_match_stderr,none": "N/A",
            }
        },
    )
    message = error_of([str(file)])
    assert str(file) in message and "no numeric metrics" in message
    assert not (tmp_path / "plots").exists()


def test_error_empty_directory_and_bad_out(results_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no results_*.json" in error_of([str(empty)])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    assert str(blocker) in error_of([str(results_file), "--out", str(blocker)])


def test_failed_save_leaves_no_temp_file(
    results_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    def broken_savefig(self: Figure, fname: Any, **kwargs: Any) -> None:
        fname.write(PNG_MAGIC)  # half a file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    out_dir = tmp_path / "figs"
    message = error_of([str(results_file), "--out", str(out_dir)])
    assert "No space left on device" in message and str(out_dir) in message
    assert list(out_dir.iterdir()) == []


def test_lone_method_is_labelled_by_prefix() -> None:
    figure = plots.layer_figure("t", "accuracy", {"accuracy": {0: (0.5, None), 1: (0.6, None)}})
    (ax,) = figure.axes
    assert [line.get_label() for line in ax.get_lines()] == ["accuracy"]
    assert len(ax.collections) == 0  # no stderr, no band


def test_stderr_band_skips_missing_values() -> None:
    series = {"p_at_1": {0: (0.1, 0.01), 1: (0.2, None), 2: (0.3, 0.02)}}
    figure = plots.layer_figure("t", "p_at_1", series)
    (ax,) = figure.axes
    (band,) = ax.collections
    # The band covers only layers with a numeric stderr (here 0 and 2, no 1-wide span).
    xs = [x for path in band.get_paths() for x, _ in path.vertices]
    assert any(math.isclose(x, 0.0) for x in xs) and any(math.isclose(x, 2.0) for x in xs)
    assert not any(math.isclose(x, 1.0) for x in xs)


def test_bars_put_each_unit_on_its_own_axis_and_captions_name_the_run():
    tasks = {"t": {"acc": (0.5, 0.1), "content_match": (0.7, None), "surprisal": (3.2, 0.2)}}
    figure = plots.bars_figure(tasks, captions={"t": "explainer m · subject m · mode self · n=9"})
    axes = figure.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["rate (0-1)", "surprisal"]
    assert axes[0].get_ylim() == (0, 1.1)
    title = figure._suptitle.get_text()  # one run: its caption once, above every panel
    assert "mode self" in title and "n=9" in title


def test_caption_from_the_results_record():
    data = {
        "config": {"model_name": "m"},
        "configs": {"t": {"metadata": {"introspect": {"subject": "s", "mode": "cross"}}}},
        "n-samples": {"t": {"effective": 50}},
    }
    assert plots.caption(data, "t") == "explainer m · subject s · mode cross · n=50"


def test_run_names_the_metrics_it_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = {**ablation_entry(), "changed_f1,none": "N/A"}
    entry["content_match,none"] = math.inf
    path = tmp_path / "results.json"
    path.write_text(json.dumps(lm_eval_results({ABLATION: entry})), encoding="utf-8")
    code, lines = run_plot([str(path)], capsys)
    assert code == 0
    (note,) = [line for line in lines if "left out" in line]
    assert note.startswith("introspect plot: left out 2 metrics with no finite value: ")
    assert f"{ABLATION}/changed_f1 ('N/A')" in note and f"{ABLATION}/content_match (inf)" in note
