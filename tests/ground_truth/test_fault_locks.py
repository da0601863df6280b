"""Lock waits say what they wait for (holder, since when), honour a timeout (option and
environment variable) and end with one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ground_truth.errors import IntrospectError
from ground_truth.locks import LOCK_TIMEOUT_ENV, set_lock_timeout
from ground_truth.store import build_once, lock_path
from harness_plugins.commands.cli import main

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ground_truth.store import exclusive
    with exclusive(Path(sys.argv[1])):
        Path(sys.argv[2]).write_text("held")
        time.sleep(float(sys.argv[3]))
    """
)


@pytest.fixture
def held(tmp_path):
    """Start a process that holds the lock of an entry for ``seconds``; yields (entry, pid)."""
    children: list[subprocess.Popen] = []

    def hold(seconds: float) -> tuple[Path, int]:
        final = tmp_path / "maps" / "m"
        mark = tmp_path / f"mark-{len(children)}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        child = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(final), str(mark), str(seconds)], env=env
        )
        children.append(child)
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        return final, child.pid

    yield hold
    for child in children:
        child.kill()
        child.wait()
    set_lock_timeout(None)


def _build(final: Path):
    return build_once(final, lambda f: (f / "a").read_text(), lambda s: (s / "a").write_text("v"))


def test_a_wait_names_the_holder_and_ends_in_one_line(held, monkeypatch, caplog):
    monkeypatch.delenv(LOCK_TIMEOUT_ENV, raising=False)
    final, pid = held(1.5)
    holder = json.loads(lock_path(final).read_text())
    assert holder["pid"] == pid and holder["since"]
    with caplog.at_level(logging.WARNING, logger="introspect"):
        assert _build(final) == ("v", True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert f"is being built by pid {pid} on " in lines[0] and f"since {holder['since']}" in lines[0]
    assert "with no timeout (INTROSPECT_LOCK_TIMEOUT)" in lines[0]
    assert "lock obtained after" in lines[1]


def test_the_environment_variable_sets_a_timeout(held, monkeypatch, caplog):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.3")
    final, pid = held(30)
    started = time.monotonic()
    with pytest.raises(IntrospectError) as error, caplog.at_level(logging.WARNING):
        _build(final)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert "\n" not in message and f"still locked by pid {pid}" in message
    assert "--lock-timeout" in message and str(lock_path(final)) in message
    assert "waiting up to 0.3 s" in caplog.text
    assert not [p for p in final.parent.iterdir() if not p.name.endswith(".lock")]


def test_the_option_wins_over_the_environment(held, monkeypatch):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "600")
    final, _ = held(30)
    set_lock_timeout(0)
    with pytest.raises(IntrospectError, match="still locked by pid"):
        _build(final)


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-1"])
def test_a_bad_timeout_is_one_line_before_any_work(monkeypatch, capsys, value):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, value)
    argv = ["ground-truth", "build", "introspect_input_ablation", "--subject", "nowhere"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"INTROSPECT_LOCK_TIMEOUT is {value!r}, not a number of seconds" in err
    monkeypatch.delenv(LOCK_TIMEOUT_ENV)
    assert main([*argv, "--lock-timeout", value]) == 2
    assert f"--lock-timeout is {value!r}" in capsys.readouterr().err
