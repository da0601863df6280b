"""Fault injection at the edges: files keyed by content, bad limits, layers and windows,
read-only and full caches through the command, and plugins that fail half-way."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path

import datasets
import pytest
from test_faults import read_only, snapshot

from ground_truth import subject as subject_module
from ground_truth.cache import ReferenceStore
from ground_truth.store import cache_root
from harness_plugins.commands.cli import main
from harness_plugins.errors import IntrospectError
from harness_plugins.lm_eval_adapter.task import IntrospectTask
from harness_plugins.options import content_key
from harness_plugins.registry import get_registry, reset_registry


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_registry()
    yield
    reset_registry()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("introspect: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def no_weights(monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("the error must come before any weights load")

    monkeypatch.setattr(subject_module, "load_model", refuse)


# ---------------------------------------------------------------- files keyed by content


def mmlu_folder(folder: Path, offset: int = 0) -> Path:
    folder.mkdir(parents=True)
    rows = [
        {
            "question": f"What is {i + offset} + 1?",
            "subject": "math",
            "choices": [str(i), str(i + 1), str(i + 2), str(i + 3)],
            "answer": 1,
        }
        for i in range(12)
    ]
    (folder / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return folder


def build(tiny_llama: Path, dataset: Path) -> dict:
    task = IntrospectTask(
        config={
            "task": "introspect_input_ablation",
            "dataset_name": "input_ablation",
            "metadata": {
                "pretrained": str(tiny_llama),
                "dataset": str(dataset),
                "split": "train",
                "test_fraction": 0.5,
            },
        }
    )
    task.ensure_references(2)
    return task.config.metadata["introspect"]


def test_a_file_an_option_names_is_keyed_by_its_content(tiny_llama, tmp_path):
    here = mmlu_folder(tmp_path / "a" / "mmlu")
    first = build(tiny_llama, here)
    assert first["references_built"] == 2
    manifest = json.loads((Path(first["reference_cache"]) / "manifest.json").read_text())
    digest = content_key(str(here))[1]["sha256"]
    assert manifest["files"]["dataset"] == {"path": str(here.resolve()), "sha256": digest}
    assert manifest["options"]["dataset"] == f"sha256:{digest}"

    same_elsewhere = tmp_path / "b" / "mmlu"
    shutil.copytree(here, same_elsewhere)  # same content elsewhere: same references
    assert build(tiny_llama, same_elsewhere)["reference_key"] == first["reference_key"]

    other = mmlu_folder(tmp_path / "c" / "mmlu", offset=100)  # same name, other content
    elsewhere = build(tiny_llama, other)
    assert elsewhere["reference_key"] != first["reference_key"]

    (here / "data.jsonl").write_text((other / "data.jsonl").read_text())  # edited in place
    edited = build(tiny_llama, here)
    assert edited["reference_key"] == elsewhere["reference_key"] != first["reference_key"]


def test_content_key_of_files_folders_and_hub_names(tmp_path):
    file = tmp_path / "bank.json"
    file.write_text("{}")
    key, record = content_key(str(file))
    assert key.startswith("sha256:") and record["path"] == str(file.resolve())
    file.write_text("{ }")
    assert content_key(str(file))[0] != key
    assert content_key("cais/mmlu") == ("cais/mmlu", None)
    assert content_key(None) == (None, None)


def test_every_option_that_names_a_file_is_keyed_by_content():
    naming = ("file", "json", "tsv", "dataset")
    for explanation in get_registry().explanation_types.values():
        for option in explanation.all_options():
            says_file = any(word in option.help.lower() for word in naming)
            if (
                says_file
                and option.affects_reference
                and option.name not in ("dataset_config", "split")
            ):
                assert option.names_file, f"{explanation.name}.{option.name}"


# ---------------------------------------------------------------- limits, layers, windows


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_a_non_positive_build_limit_is_one_line(tiny_llama, capsys, limit):
    argv = ["ground-truth", "build", "input_ablation", "--subject", str(tiny_llama)]
    assert main([*argv, "--limit", limit]) == 2
    assert "--limit" in one_error_line(capsys)


@pytest.mark.parametrize("limit", [0, -2])
def test_a_non_positive_lm_eval_limit_is_an_error(tiny_llama, limit):
    task = IntrospectTask(
        config={
            "task": "introspect_input_ablation",
            "dataset_name": "input_ablation",
            "metadata": {"pretrained": str(tiny_llama)},
        }
    )
    with pytest.raises(IntrospectError, match=r"--limit .* leaves no documents"):
        task.build_all_requests(limit=limit)


@pytest.mark.parametrize(
    ("task", "metadata", "expected"),
    [
        ("features", {"layer": 7}, "layer 7 is out of range for a subject with 2 blocks"),
        ("features", {"layer": -3}, "layer -3 is out of range"),
        ("activation_patching", {"first_layer": 0, "window": 5}, "window 5 from block 0"),
        ("activation_patching", {"first_layer": 4}, "first_layer 4 outside 0..1"),
        ("patchscope_next_token", {"layers": "0,9"}, "layers='0,9' outside 0..1"),
    ],
)
def test_out_of_range_layers_and_windows_fail_before_weights_load(
    tiny_llama, monkeypatch, capsys, task, metadata, expected
):
    no_weights(monkeypatch)
    subject_module.shared_models.clear()
    argv = ["ground-truth", "build", task, "--subject", str(tiny_llama), "--limit", "2"]
    assert main([*argv, "--metadata", json.dumps(metadata)]) == 2
    assert expected in one_error_line(capsys)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"test_fraction": "nan"}, "option test_fraction='nan' is not a valid float"),
        ({"test_fraction": "inf"}, "option test_fraction='inf' is not a valid float"),
        ({"hint_template": "Hint: ({answer})"}, "uses the unknown field {answer}"),
        ({"hint_template": "Hint: {letter"}, "is not a valid template"),
        ({"hint_template": "Hint: {0}"}, "uses the unknown field {0}"),
    ],
)
def test_non_finite_numbers_and_bad_templates_fail_before_weights_load(
    tiny_llama, monkeypatch, capsys, metadata, expected
):
    no_weights(monkeypatch)
    subject_module.shared_models.clear()
    argv = ["ground-truth", "build", "input_ablation", "--subject", str(tiny_llama), "--limit", "2"]
    assert main([*argv, "--metadata", json.dumps(metadata)]) == 2
    assert expected in one_error_line(capsys)


def test_a_template_with_its_field_and_escaped_braces_is_accepted(tiny_llama):
    task = IntrospectTask(
        config={
            "task": "introspect_input_ablation",
            "dataset_name": "input_ablation",
            "metadata": {"pretrained": str(tiny_llama), "hint_template": "{{x}} ({letter})"},
        }
    )
    assert task.config.metadata["introspect"]


@pytest.mark.parametrize("k", [-1, -5])
def test_a_negative_num_fewshot_is_an_error(tiny_llama, k):
    task = IntrospectTask(
        config={
            "task": "introspect_input_ablation",
            "dataset_name": "input_ablation",
            "metadata": {"pretrained": str(tiny_llama)},
        }
    )
    doc = task.test_docs()[0]
    with pytest.raises(IntrospectError, match=f"--num_fewshot {k} is not a number of examples"):
        task.fewshot_context(doc, num_fewshot=k)


# ---------------------------------------------------------------- read-only and full caches


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_a_cache_that_cannot_be_written_is_one_line_and_nothing_half_written(
    tiny_llama, monkeypatch, capsys, code
):
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    before = snapshot(root)
    read_only(monkeypatch, root, code)
    argv = ["ground-truth", "build", "input_ablation", "--subject", str(tiny_llama)]
    assert main([*argv, "--limit", "2", "--metadata", '{"seed": 77}']) == 2
    line = one_error_line(capsys)
    assert "cannot write the cache entry" in line and os.strerror(code) in line
    monkeypatch.undo()
    assert snapshot(root) == before


def test_a_cache_root_that_cannot_be_created_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "new" / "cache"
    read_only(monkeypatch, tmp_path / "new")
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(root))
    from test_faults import KEY, QUESTIONS, doubling

    with pytest.raises(IntrospectError, match="cannot write the cache entry"):
        ReferenceStore().ensure(KEY, QUESTIONS, 2, doubling(), describe={})
    monkeypatch.undo()
    assert not (tmp_path / "new").exists()


def test_a_disk_that_fills_during_the_build_is_one_line(tiny_llama, monkeypatch, capsys):
    def full(self, path, *args, **kwargs):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    store = ReferenceStore()
    store.root.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in store.root.iterdir() if not p.name.endswith(".lock")}
    monkeypatch.setattr(datasets.Dataset, "save_to_disk", full)
    argv = ["ground-truth", "build", "input_ablation", "--subject", str(tiny_llama)]
    assert main([*argv, "--limit", "2", "--metadata", '{"seed": 78}']) == 2
    assert "No space left on device" in one_error_line(capsys)
    after = {p.name for p in store.root.iterdir() if not p.name.endswith(".lock")}
    assert after == before


# ---------------------------------------------------------------- plugins


def test_a_plugin_hook_that_raises_keeps_nothing_of_that_call(monkeypatch, caplog):
    import importlib.metadata
    import types

    from harness_plugins import hookimpl
    from harness_plugins import registry as plugins

    def half_then_boom(register):
        register("half_registered", object)
        raise RuntimeError("boom")

    module = types.ModuleType("fake_plugin")
    module.introspect_register_backends = hookimpl(half_then_boom)
    entry = types.SimpleNamespace(
        name="halfway", value="fake", dist=types.SimpleNamespace(name="x", version="1")
    )
    entry.load = lambda: module
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group=None, **_: [entry] if group == plugins.ENTRY_POINT_GROUP else [],
    )
    monkeypatch.setenv(plugins.PLUGINS_ENV, "halfway,no_such_plugin")
    with caplog.at_level(logging.WARNING, logger="introspect"):
        registry = get_registry()
    assert "half_registered" not in registry.backends and "hf" in registry.backends
    record = next(p for p in registry.plugins if p.name == "halfway")
    assert record.registered == {} and "RuntimeError: boom" in record.errors[0]
    unknown = [r.getMessage() for r in caplog.records if "no_such_plugin" in r.getMessage()]
    assert len(unknown) == 1 and "installed plugins: halfway" in unknown[0]
