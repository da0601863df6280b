"""Make ``lm_eval --tasks introspect_*`` and ``--model introspect`` work with no flags.

lm-eval 0.4.13 has no entry point for task packages. `lm_eval_introspect.pth` (installed
with this package) imports this module at interpreter start-up; it only registers an
import hook and returns. Nothing else happens unless lm-eval itself is imported: then,
right after lm-eval defines its task index and its model registry, the hook adds the
introspect task folder and tasks for plugin explanation types
(`harness_plugins.lm_eval_adapter.index`) and applies its patches
(`harness_plugins.lm_eval_adapter.patches`), registering the ``introspect`` model lazily.

Switch it off with ``INTROSPECT_DISABLE_LM_EVAL_HOOK=1`` and use
``--include_path "$(introspect tasks --path)"`` instead (see README).
"""

from __future__ import annotations

import os
import sys

# This module runs at every interpreter start-up in the environment, so it imports
# nothing beyond what Python has already loaded (importlib.abc alone costs ~15 ms).

DISABLE_ENV = "INTROSPECT_DISABLE_LM_EVAL_HOOK"

# module lm-eval defines -> (our module in harness_plugins.lm_eval_adapter, its function)
# run right after it
_AFTER_IMPORT = {
    "lm_eval.api.registry": ("patches", "register_model"),
    "lm_eval.tasks.manager": ("index", "install_task_index"),
    "lm_eval.config.evaluate_config": ("patches", "patch_evaluator_config"),
    "lm_eval.evaluator_utils": ("patches", "patch_stderr"),
    "lm_eval.utils": ("patches", "patch_console_table"),
}


def _run_patch(module_name: str) -> None:
    try:
        from harness_plugins.lm_eval_adapter import index, patches

        ours, function = _AFTER_IMPORT[module_name]
        getattr({"index": index, "patches": patches}[ours], function)()
    except Exception as error:  # never break lm-eval for its other tasks
        print(
            f"introspect: warning: could not add introspect tasks to lm-eval ({type(error).__name__}: "
            f"{error}); set {DISABLE_ENV}=1 and use --include_path",
            file=sys.stderr,
        )


class _PatchingLoader:
    """Delegates to the real loader, then runs the patch for the module it loaded."""

    def __init__(self, wrapped: object, name: str) -> None:
        self._wrapped = wrapped
        self._name = name

    def create_module(self, spec: object) -> object:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: object) -> None:
        self._wrapped.exec_module(module)
        _run_patch(self._name)

    def __getattr__(self, attribute: str) -> object:
        return getattr(self._wrapped, attribute)


class _AfterImportFinder:
    """A meta path finder that wraps the loader of the lm-eval modules we patch."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        if fullname not in _AFTER_IMPORT:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, fullname)
                return spec
        return None


def install(force: bool = False) -> None:
    """Register the import hook (idempotent); patch at once what lm-eval already imported.

    ``force``: even when ``INTROSPECT_DISABLE_LM_EVAL_HOOK`` is set (an explicit
    ``python -m harness_plugins.lm_eval_adapter`` / ``introspect eval`` run).
    """
    if not force and os.environ.get(DISABLE_ENV, "").lower() in ("1", "true", "yes", "on"):
        return
    if any(isinstance(finder, _AfterImportFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _AfterImportFinder())
    for name in _AFTER_IMPORT:
        if name in sys.modules:
            _run_patch(name)
