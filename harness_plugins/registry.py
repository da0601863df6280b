"""The plugin manager: built-ins and installed plugins, registered through the same hooks.

One registry per process, built on first use. Each hook implementation is called on its
own so that a plugin that raises costs only itself (one warning naming it, and nothing it
registered in that call is kept), and so that the registry knows which plugin added which
explanation type, backend or model alias.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from harness_plugins import hookspecs
from harness_plugins.errors import IntrospectError

if TYPE_CHECKING:
    from ground_truth.subject import ModelAlias
    from harness_plugins.explanation import ExplanationType

logger = logging.getLogger("introspect")

PROJECT = "introspect"
ENTRY_POINT_GROUP = "introspect"
PLUGINS_ENV = "INTROSPECT_PLUGINS"

hookimpl = pluggy.HookimplMarker(PROJECT)

BUILTIN_PLUGINS = (
    "harness_plugins.builtin.registration",
    "harness_plugins.builtin.causal.input_ablation",
    "harness_plugins.builtin.preferences",
    "harness_plugins.builtin.features.sources",
    "harness_plugins.builtin.features.sae_source",
    "harness_plugins.builtin.features.features",
    "harness_plugins.builtin.causal.activation_patching",
    "harness_plugins.builtin.patchscopes",
    "harness_plugins.builtin.injected_thoughts.injected_thoughts",
)


@dataclass(frozen=True)
class HookKind:
    """One hook of the contract: what it registers, where it lands, and how it is called."""

    hook: str
    kind: str
    """Plural display name, as ``introspect plugins`` shows it."""
    table: str
    """The `Registry` attribute that holds what it registers."""
    named_by_instance: bool = False
    """``register(instance)`` (the name is ``instance.name``) instead of ``register(name, value)``."""
    identifier_names: bool = True
    """Names must be lowercase identifiers (model aliases may hold dashes and dots)."""


HOOK_KINDS: tuple[HookKind, ...] = (
    HookKind(
        "introspect_register_explanation_types",
        "explanation types",
        "explanation_types",
        named_by_instance=True,
    ),
    HookKind("introspect_register_backends", "backends", "backends"),
    HookKind(
        "introspect_register_model_aliases",
        "model aliases",
        "model_aliases",
        identifier_names=False,
    ),
    HookKind("introspect_register_feature_sources", "feature sources", "feature_sources"),
)


@dataclass
class PluginRecord:
    """What one plugin is, where it came from, and what it added (or why it failed)."""

    name: str
    source: str
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """Everything the loaded plugins registered, by name."""

    explanation_types: dict[str, ExplanationType] = field(default_factory=dict)
    backends: dict[str, Callable[..., Any]] = field(default_factory=dict)
    model_aliases: dict[str, ModelAlias] = field(default_factory=dict)
    feature_sources: dict[str, Any] = field(default_factory=dict)
    plugins: list[PluginRecord] = field(default_factory=list)

    def explanation_type(self, name: str) -> ExplanationType:
        try:
            return self.explanation_types[name]
        except KeyError:
            known = ", ".join(sorted(self.explanation_types)) or "none"
            raise IntrospectError(
                f"unknown explanation type {name!r}; registered types: {known} "
                "(`introspect plugins` shows which plugin registers what)"
            ) from None

    def backend(self, name: str) -> Callable[..., Any]:
        try:
            return self.backends[name]
        except KeyError:
            known = ", ".join(sorted(self.backends)) or "none"
            raise IntrospectError(
                f"unknown ground-truth backend {name!r}; registered backends: {known} "
                "(install the plugin that provides it, or pick one of these with the "
                "option backend=...)"
            ) from None


def _warn(plugin: str, message: str, record: PluginRecord) -> None:
    record.errors.append(message)
    logger.warning(
        "introspect: plugin %r %s; it is skipped, everything else keeps working", plugin, message
    )


def _selected_entry_points() -> list[importlib.metadata.EntryPoint]:
    found = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    wanted = os.environ.get(PLUGINS_ENV)
    if wanted is None:
        return found
    names = {name.strip() for name in wanted.split(",") if name.strip()}
    unknown = sorted(names - {ep.name for ep in found})
    if unknown:
        installed = ", ".join(ep.name for ep in found) or "none"
        logger.warning(
            "introspect: %s names %s, which no installed plugin is; installed plugins: %s",
            PLUGINS_ENV,
            ", ".join(repr(name) for name in unknown),
            installed,
        )
    return [ep for ep in found if ep.name in names]


def _entry_point_source(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"{where} (entry point {ep.name} = {ep.value})"


def _make_plugin_manager(records: dict[str, PluginRecord]) -> pluggy.PluginManager:
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        name = module_name.rsplit(".", 1)[-1]
        records[name] = PluginRecord(name=name, source=f"built-in ({module_name})")
        manager.register(importlib.import_module(module_name), name=name)
    for ep in _selected_entry_points():
        record = PluginRecord(name=ep.name, source=_entry_point_source(ep))
        records[ep.name] = record
        _guarded(
            ep.name,
            "failed to load",
            record,
            lambda ep=ep: manager.register(ep.load(), name=ep.name),
        )
    return manager


def _guarded(plugin: str, what: str, record: PluginRecord, call: Callable[[], Any]) -> bool:
    """Run ``call``; anything it raises is one warning naming ``plugin`` and False.

    `SystemExit` and other BaseExceptions are isolated too; a KeyboardInterrupt goes
    through only when the user pressed Ctrl-C meanwhile (a SIGINT arrived), not when the
    plugin raised one itself.
    """
    with _sigint_watch() as interrupted:
        try:
            call()
            return True
        except KeyboardInterrupt:
            if interrupted:
                raise
            _warn(plugin, f"{what}: KeyboardInterrupt raised by the plugin", record)
        except BaseException as error:  # a plugin must not end the process
            _warn(plugin, f"{what}: {_describe(error)}", record)
    return False


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit({error.code!r}) (it called sys.exit)"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@contextlib.contextmanager
def _sigint_watch() -> Iterator[list[bool]]:
    """Record whether a SIGINT arrives in the block, then let it act as it would have."""
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        seen.append(True)  # cannot watch: treat every KeyboardInterrupt as the user's
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        seen.append(True)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _collect(manager: pluggy.PluginManager, records: dict[str, PluginRecord]) -> Registry:
    registry = Registry()
    owners: dict[tuple[str, str], str] = {}
    for hook_kind in HOOK_KINDS:
        table = getattr(registry, hook_kind.table)
        # get_hookimpls() is in registration order: built-ins first, so they win conflicts
        for impl in getattr(manager.hook, hook_kind.hook).get_hookimpls():
            record = records[impl.plugin_name]
            pending: dict[str, Any] = {}  # committed only when the hook returns

            def register(
                *args: Any, _table=table, _record=record, _hook=hook_kind, _pending=pending
            ) -> None:
                name, value = _registration(_hook, args)
                if name in _table or name in _pending:
                    owner = owners.get((_hook.kind, name), _record.name)
                    _warn(
                        _record.name,
                        f"registers {_hook.kind[:-1]} {name!r}, already registered by "
                        f"{owner!r}; the first registration is kept",
                        _record,
                    )
                    return
                _pending[name] = value

            arguments = {"register": register} if impl.argnames else {}
            call = functools.partial(impl.function, **arguments)
            if not _guarded(record.name, f"raised in {hook_kind.hook}", record, call):
                continue  # nothing of a failed hook call is kept
            for name, value in pending.items():
                table[name] = value
                owners[(hook_kind.kind, name)] = record.name
                record.registered.setdefault(hook_kind.kind, []).append(name)
    registry.plugins = list(records.values())
    return registry


_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _registration(hook: HookKind, args: tuple[Any, ...]) -> tuple[str, Any]:
    if hook.named_by_instance:
        if len(args) != 1 or not isinstance(getattr(args[0], "name", None), str):
            raise TypeError(f"register(instance) takes one object with a name for {hook.kind}")
        name, value = args[0].name, args[0]
    elif len(args) != 2 or not isinstance(args[0], str):
        raise TypeError(f"register(name, value) takes a name and a value for {hook.kind}")
    else:
        name, value = args
    if hook.identifier_names and not _NAME.fullmatch(name):
        raise ValueError(f"{hook.kind[:-1]} name {name!r} must be a lowercase identifier")
    return name, value


@functools.cache
def get_registry() -> Registry:
    """The process-wide registry; plugins load once, on first use."""
    records: dict[str, PluginRecord] = {}
    return _collect(_make_plugin_manager(records), records)


def reset_registry() -> None:
    """Forget the loaded plugins (tests, and code that installs plugins at run time)."""
    get_registry.cache_clear()
