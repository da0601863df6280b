"""The plugin manager: built-ins through the same hooks, isolation of broken plugins, narrowing."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import types

import pytest

from harness_plugins import hookimpl
from harness_plugins import registry as plugins
from harness_plugins.commands.cli import main


class FakeEntryPoint:
    """Stands in for an installed distribution's entry point in the ``introspect`` group."""

    def __init__(self, name: str, loader) -> None:
        self.name = name
        self.value = f"fake_{name}"
        self.dist = types.SimpleNamespace(name=f"fake-{name}", version="9.9")
        self._loader = loader

    def load(self):
        return self._loader()


def module_with(**hooks) -> types.ModuleType:
    module = types.ModuleType("fake_plugin")
    for name, function in hooks.items():
        setattr(module, name, hookimpl(function))
    return module


@pytest.fixture
def installed(monkeypatch):
    """Install fake entry points for the duration of a test; yields a setter."""
    found: list[FakeEntryPoint] = []

    def entry_points(group=None, **_):
        return list(found) if group == plugins.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    plugins.reset_registry()
    yield found
    plugins.reset_registry()


def test_builtins_register_through_the_hooks(installed):
    registry = plugins.get_registry()
    assert "input_ablation" in registry.explanation_types
    assert "hf" in registry.backends
    assert "smollm2-135m-instruct" in registry.model_aliases
    records = {p.name: p for p in registry.plugins}
    assert records["input_ablation"].source.startswith("built-in")
    assert records["input_ablation"].registered == {"explanation types": ["input_ablation"]}
    assert records["registration"].registered["backends"] == ["hf", "transformer_lens"]


def test_third_party_plugin_registers_a_backend_and_an_alias(installed):
    def register_backends(register):
        register("remote", object)

    def register_model_aliases(register):
        register("my-model", "alias")

    installed.append(
        FakeEntryPoint(
            "extra",
            lambda: module_with(
                introspect_register_backends=register_backends,
                introspect_register_model_aliases=register_model_aliases,
            ),
        )
    )
    registry = plugins.get_registry()
    assert registry.backends["remote"] is object
    record = next(p for p in registry.plugins if p.name == "extra")
    assert record.source == "fake-extra 9.9 (entry point extra = fake_extra)"
    assert record.registered == {"backends": ["remote"], "model aliases": ["my-model"]}


def test_a_plugin_that_fails_to_import_warns_once_and_the_rest_works(installed, caplog):
    def broken():
        raise ImportError("No module named 'missing_dependency'")

    installed.append(FakeEntryPoint("broken", broken))
    with caplog.at_level(logging.WARNING, logger="introspect"):
        registry = plugins.get_registry()
    warnings = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(warnings) == 1
    assert "failed to load: ImportError: No module named 'missing_dependency'" in warnings[0]
    assert "input_ablation" in registry.explanation_types


def test_a_plugin_that_raises_in_a_hook_is_skipped_with_one_warning(installed, caplog):
    def explode(register):
        raise RuntimeError("boom")

    def fine(register):
        register("other", object)

    installed.append(
        FakeEntryPoint(
            "exploding", lambda: module_with(introspect_register_explanation_types=explode)
        )
    )
    installed.append(FakeEntryPoint("fine", lambda: module_with(introspect_register_backends=fine)))
    with caplog.at_level(logging.WARNING, logger="introspect"):
        registry = plugins.get_registry()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("exploding" in m for m in messages) == 1
    assert "raised in introspect_register_explanation_types: RuntimeError: boom" in messages[0]
    assert "other" in registry.backends
    assert "input_ablation" in registry.explanation_types


def test_a_conflicting_registration_keeps_the_first_and_names_both(installed, caplog):
    def register_backends(register):
        register("hf", object)

    installed.append(
        FakeEntryPoint(
            "shadow", lambda: module_with(introspect_register_backends=register_backends)
        )
    )
    with caplog.at_level(logging.WARNING, logger="introspect"):
        registry = plugins.get_registry()
    assert registry.backends["hf"] is not object
    assert any("already registered by 'registration'" in r.getMessage() for r in caplog.records)


def test_invalid_type_names_are_rejected(installed, caplog):
    class Bad:
        name = "Not A Name"

    def register_types(register):
        register(Bad())

    installed.append(
        FakeEntryPoint(
            "badname", lambda: module_with(introspect_register_explanation_types=register_types)
        )
    )
    with caplog.at_level(logging.WARNING, logger="introspect"):
        registry = plugins.get_registry()
    assert "Not A Name" not in registry.explanation_types
    assert any("must be a lowercase identifier" in r.getMessage() for r in caplog.records)


def test_environment_variable_narrows_installed_plugins(installed, monkeypatch):
    def register_backends(register):
        register("remote", object)

    installed.append(
        FakeEntryPoint(
            "wanted", lambda: module_with(introspect_register_backends=register_backends)
        )
    )
    installed.append(FakeEntryPoint("unwanted", lambda: pytest.fail("must not be loaded")))
    monkeypatch.setenv(plugins.PLUGINS_ENV, "wanted")
    registry = plugins.get_registry()
    assert [p.name for p in registry.plugins if not p.source.startswith("built-in")] == ["wanted"]
    monkeypatch.setenv(plugins.PLUGINS_ENV, "")
    plugins.reset_registry()
    assert all(p.source.startswith("built-in") for p in plugins.get_registry().plugins)


def test_introspect_plugins_lists_sources_registrations_and_errors(installed, capsys):
    def broken():
        raise ImportError("nope")

    installed.append(FakeEntryPoint("broken", broken))
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "input_ablation  [built-in (harness_plugins.builtin.causal.input_ablation)]" in out
    assert "explanation types: input_ablation" in out
    assert "broken  [fake-broken 9.9 (entry point broken = fake_broken)]" in out
    assert "error: failed to load: ImportError: nope" in out


def test_installed_test_plugin_is_discovered_through_its_entry_point():
    """The real third-party package installed in the test environment (tests/plugin_package)."""
    plugins.reset_registry()
    registry = plugins.get_registry()
    record = next((p for p in registry.plugins if p.name == "testplugin"), None)
    assert record is not None, "pip install tests/plugin_package into the test environment"
    assert record.source.startswith("introspect-testplugin 0.1.0")
    assert record.registered == {"explanation types": ["next_token"]}


def test_hookspecs_document_every_hook():
    from harness_plugins import hookspecs

    hooks = [name for name in vars(hookspecs) if name.startswith("introspect_register_")]
    assert set(hooks) == {
        "introspect_register_explanation_types",
        "introspect_register_backends",
        "introspect_register_model_aliases",
        "introspect_register_feature_sources",
    }
    for name in hooks:
        assert len(getattr(hookspecs, name).__doc__.split()) > 30


def test_importing_the_package_is_free():
    """The .pth hook imports harness_plugins at every start-up: it must not pull in pluggy or torch."""
    import subprocess

    code = "import harness_plugins, harness_plugins.lm_eval_adapter.hook, sys; print(sorted(m for m in ('pluggy', 'torch', 'lm_eval') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


class PluginBaseException(BaseException):
    """What a plugin might raise that ``except Exception`` would not catch."""


RAISED_ON_IMPORT = {
    "sys.exit(3)": (SystemExit(3), "SystemExit(3) (it called sys.exit)"),
    "sys.exit()": (SystemExit(), "SystemExit(None) (it called sys.exit)"),
    "KeyboardInterrupt": (KeyboardInterrupt(), "KeyboardInterrupt raised by the plugin"),
    "GeneratorExit": (GeneratorExit(), "GeneratorExit"),
    "a BaseException subclass": (PluginBaseException("boom"), "PluginBaseException: boom"),
}


@pytest.mark.parametrize("kind", RAISED_ON_IMPORT)
def test_a_plugin_that_raises_anything_on_import_is_isolated(installed, caplog, kind):
    raised, says = RAISED_ON_IMPORT[kind]

    def load():
        raise raised

    installed.append(FakeEntryPoint("rude", load))
    with caplog.at_level(logging.WARNING, logger="introspect"):
        registry = plugins.get_registry()
    warnings = [r.getMessage() for r in caplog.records if "rude" in r.getMessage()]
    assert len(warnings) == 1 and f"failed to load: {says}" in warnings[0], warnings
    assert "input_ablation" in registry.explanation_types


def test_a_plugin_hook_that_calls_sys_exit_is_isolated(installed, caplog):
    def leave(register):
        register("half", object)
        sys.exit(1)

    installed.append(
        FakeEntryPoint("leaver", lambda: module_with(introspect_register_backends=leave))
    )
    with caplog.at_level(logging.WARNING, logger="introspect"):
        registry = plugins.get_registry()
    assert sum("leaver" in r.getMessage() for r in caplog.records) == 1
    assert "half" not in registry.backends and "hf" in registry.backends


def test_a_real_ctrl_c_while_a_plugin_loads_still_interrupts(installed):
    import os
    import signal

    def load():
        os.kill(os.getpid(), signal.SIGINT)  # the user pressing Ctrl-C meanwhile
        return module_with()

    installed.append(FakeEntryPoint("slow", load))
    with pytest.raises(KeyboardInterrupt):
        plugins.get_registry()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_introspect_and_lm_eval_survive_a_plugin_that_exits_on_import(tmp_path):
    import os
    import subprocess

    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(3)\n")
    dist = tmp_path / "exiting_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: exiting-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[introspect]\nexiting = exiting_plugin\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, str(tmp_path)])}
    bin_dir = os.path.dirname(sys.executable)
    for command in (["introspect", "plugins"], ["lm_eval", "ls", "tasks"]):
        done = subprocess.run(
            [os.path.join(bin_dir, command[0]), *command[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert done.stderr.count("plugin 'exiting' failed to load: SystemExit(3)") == 1
        assert "introspect_input_ablation" in done.stdout or command[0] == "introspect"
