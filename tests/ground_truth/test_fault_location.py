"""The cache location itself is wrong: a file, a dangling link, a name longer than the file
system allows, a lock path that is a folder. One `introspect: error:` line (exit 2) naming
the path and the fix, or a recovered build; never a traceback, nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_fault_inputs import one_error_line

from ground_truth import subject as subject_module
from ground_truth.cache import ReferenceStore
from ground_truth.store import lock_path
from harness_plugins.commands.cli import main

LOCATIONS = {
    "a file": lambda p: (p.write_text("not a folder"), p)[1],
    "a file on the way": lambda p: (p.write_text("not a folder"), p / "cache")[1],
    "a dangling link": lambda p: (p.symlink_to(p.parent / "gone" / "cache"), p)[1],
    "a name too long": lambda p: p / ("x" * 300) / "cache",
}
REASONS = {
    "a file": "is a file, not a folder",
    "a file on the way": "is a file, not a folder",
    "a dangling link": "which does not exist",
    "a name too long": "is a name longer than the file system allows",
}


def build(model: Path, *extra: str) -> int:
    subject_module.shared_models.clear()
    argv = ["ground-truth", "build", "input_ablation", "--subject", str(model), "--limit", "2"]
    return main([*argv, *extra])


@pytest.mark.parametrize("kind", LOCATIONS)
def test_a_bad_cache_location_is_one_line(tiny_llama, tmp_path, monkeypatch, capsys, kind):
    root = LOCATIONS[kind](tmp_path / "where")
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(root))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert build(tiny_llama) == 2
    line = one_error_line(capsys)
    assert "INTROSPECT_CACHE_DIR" in line and REASONS[kind] in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("verb", [["ls"], ["verify"]])
@pytest.mark.parametrize("kind", LOCATIONS)
def test_ls_and_verify_of_a_bad_location_are_one_line_or_empty(
    tmp_path, monkeypatch, capsys, kind, verb
):
    root = LOCATIONS[kind](tmp_path / "where")
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(root))
    code = main(["ground-truth", *verb])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2)


def test_a_lock_path_that_is_a_folder_is_replaced(tiny_llama, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))
    assert build(tiny_llama, "--metadata", '{"seed": 91}') == 0
    entry = next(p for p in ReferenceStore().root.iterdir() if p.is_symlink())
    lock = lock_path(entry)
    lock.unlink(missing_ok=True)
    (lock / "inside").mkdir(parents=True)
    for link in [entry, *entry.parent.glob(f".{entry.name}@*")]:  # force a rebuild
        os.system(f"rm -rf '{link}'")
    capsys.readouterr()
    assert build(tiny_llama, "--metadata", '{"seed": 91}') == 0
    assert "Traceback" not in capsys.readouterr().err
    assert lock.is_file() or not lock.exists()
