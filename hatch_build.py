"""Ship `lm_eval_introspect.pth` so lm-eval finds the introspect tasks and model with no flags.

The .pth line runs at interpreter start-up and only installs a tiny import hook
(`harness_plugins.lm_eval_adapter.hook`); nothing heavy is imported until lm-eval itself is.
Editable installs need `force_include_editable`, regular wheels `force_include`.
"""

from __future__ import annotations

import os
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PTH_NAME = "lm_eval_introspect.pth"
PTH_LINE = "import harness_plugins.lm_eval_adapter.hook as _h; _h.install()\n"


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        folder = tempfile.mkdtemp(prefix="introspect-pth-")
        path = os.path.join(folder, PTH_NAME)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(PTH_LINE)
        key = "force_include_editable" if version == "editable" else "force_include"
        build_data.setdefault(key, {})[path] = PTH_NAME
