"""The plugin contract of lm-eval-introspect: read this file first when writing a plugin.

A plugin is any importable object (usually a module) with functions decorated by
`harness_plugins.hookimpl` and named like the specs below. Installed packages expose it
through an entry point in the ``introspect`` group::

    [project.entry-points.introspect]
    my_plugin = "my_package.introspect_plugin"

Built-in explanation types, backends and model aliases are registered through these same
hooks (see `harness_plugins/builtin/`). Every hook receives one argument, ``register``, a
callback the plugin calls once per thing it adds; the plugin manager records which plugin
registered what (``introspect plugins`` shows it), and a plugin that raises here is
reported with one warning and skipped, while everything else keeps working.

``INTROSPECT_PLUGINS=name1,name2`` loads only those installed plugins (empty: none);
built-ins always load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("introspect")


@hookspec
def introspect_register_explanation_types(register: Callable[[Any], None]) -> None:
    """Add explanation types, each of which becomes the lm-eval task ``introspect_<name>``.

    Called once, the first time the registry is used (when lm-eval builds its task index,
    or any ``introspect`` command runs). Call ``register(instance)`` with an instance of a
    `harness_plugins.explanation.ExplanationType` subclass; its ``name`` must be a lowercase
    identifier. No YAML file is needed: the task appears in ``lm_eval ls tasks`` and in the
    ``introspect`` group. Keep module import cheap (import torch inside methods).
    """


@hookspec
def introspect_register_backends(register: Callable[[str, Any], None]) -> None:
    """Add ground-truth backends that explanation types can run the subject with.

    Call ``register(name, factory)``; ``factory(loaded_model, batch_size=..., progress=...)``
    must return a `ground_truth.primitive.InterventionBackend`: the one intervention
    primitive (read activations at sites, write vectors at (site, position), forward and
    greedy generation, padding-aware, batched). Users choose it with the task option
    ``backend``; ``hf`` is built in.
    """


@hookspec
def introspect_register_model_aliases(register: Callable[[str, Any], None]) -> None:
    """Add short model names usable as ``pretrained=``, ``subject=`` and in commands.

    Call ``register(name, alias)`` with a `ground_truth.subject.ModelAlias`: a description
    and a ``resolve()`` callable returning a `ground_truth.subject.ModelSource` (a local
    folder, optionally a GGUF file in it). ``resolve`` runs only when the alias is used, so
    it may prepare files (download, convert) there, and must raise
    `harness_plugins.errors.IntrospectError` with the fix when it cannot.
    """


@hookspec
def introspect_register_feature_sources(register: Callable[[str, Any], None]) -> None:
    """Add sources of features (directions in the subject's residual stream) to explain.

    Call ``register(name, source)`` with a `ground_truth.features.FeatureSource`; users pick
    it with the ``introspect_features`` option ``source``. A source turns a loaded subject
    and a backend into `ground_truth.features.Feature`s: a vector, its layer, a reference
    label and exemplars (texts with per-token activations). ``concepts`` (difference of
    mean residuals), ``neurons`` (MLP neurons) and ``sae`` (sparse-autoencoder features
    read from a sae-lens folder) are built in. A feature with an empty label is scored by
    the label-free metrics only.
    """
