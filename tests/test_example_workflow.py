"""The example CI workflow runs: its shell steps (one script) on a tiny model, installs skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "github-actions"
SCRIPT = EXAMPLE / "introspect-gate.sh"


def test_workflow_installs_what_exists_and_caches():
    workflow = yaml.safe_load((EXAMPLE / "introspect-gate.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    runs = [s for s in steps if "run" in s]
    assert [s["run"] for s in runs] == ["bash .github/workflows/introspect-gate.sh"]
    env = runs[0]["env"]
    assert env["SUBJECT"] and env["BATCH_SIZE"] and env["REPO"].startswith("git+https://")
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert "~/.cache/pip" in cache["with"]["path"]
    assert env["INTROSPECT_CACHE_DIR"] in cache["with"]["path"]
    script = SCRIPT.read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in script
    assert "pip install lm-eval-introspect" not in script
    assert "--batch_size" in script and '\\"subject\\"' in script


def run_script(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "INTROSPECT_SKIP_INSTALL": "1",
        "ADAPTER": "",
        "MIN_VALUE": "0",
        "LIMIT": "2",
        "BATCH_SIZE": "2",
        **settings,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_workflow_script_evaluates_and_gates_a_tiny_model(tiny_llama, tmp_path):
    first = run_script(tmp_path, SUBJECT=str(tiny_llama), BASELINE="", RESULTS="first/")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "gate: 1 check, 0 failed" in first.stdout
    baseline = tmp_path / "baseline"
    shutil.copytree(tmp_path / "first", baseline)
    again = run_script(tmp_path, SUBJECT=str(tiny_llama), BASELINE=str(baseline), RESULTS="next/")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "baseline" in again.stdout and "0 failed" in again.stdout
