"""The ``introspect`` command and the lm-eval glue that needs no model."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from harness_plugins.commands.cli import main
from harness_plugins.lm_eval_adapter.index import task_config_dir
from harness_plugins.registry import get_registry


def test_options_lists_every_option_with_its_default(capsys):
    assert main(["options", "introspect_input_ablation"]) == 0
    out = capsys.readouterr().out
    for row in (
        "subject              null",
        'partition            "test"',
        'hint                 "random"',
    ):
        assert row in out
    assert "metrics: exact_match, content_match, changed_f1, valid" in out


def test_options_of_an_unknown_task_is_one_error(capsys):
    assert main(["options", "introspect_nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("introspect: error: unknown explanation type 'nope'; registered types:")


def test_models_and_tasks(capsys):
    assert main(["models"]) == 0
    assert "smollm2-135m-instruct" in capsys.readouterr().out
    assert main(["tasks", "--path"]) == 0
    folder = capsys.readouterr().out.strip()
    assert (task_config_dir() / "introspect_input_ablation.yaml").is_file() and folder == str(
        task_config_dir()
    )


def test_the_yaml_group_lists_exactly_the_yaml_tasks():
    folder = task_config_dir()
    group = yaml.safe_load((folder / "introspect.yaml").read_text())
    tasks = sorted(p.stem for p in folder.glob("introspect_*.yaml"))
    assert sorted(group["task"]) == tasks
    for name in tasks:
        config = yaml.load((folder / f"{name}.yaml").read_text(), Loader=_FunctionTolerantLoader)
        assert config["task"] == name and config["dataset_path"] == "introspect"
        assert config["dataset_name"] in get_registry().explanation_types


class _FunctionTolerantLoader(yaml.SafeLoader):
    pass


_FunctionTolerantLoader.add_constructor(
    "!function", lambda loader, node: loader.construct_scalar(node)
)


def test_importing_our_model_first_keeps_lm_evals_own_models():
    """Registering a model into lm-eval's empty registry would hide --model hf."""
    code = (
        "import harness_plugins.lm_eval_adapter.model\n"
        "from lm_eval.api.registry import get_model\n"
        "print(get_model('hf').__name__, get_model('introspect').__name__)"
    )
    for hook in ("0", "1"):
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "INTROSPECT_DISABLE_LM_EVAL_HOOK": hook},
        )
        assert done.stdout.split() == ["HFLM", "IntrospectLM"], done.stderr[-2000:]
