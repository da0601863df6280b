"""``python -m harness_plugins.lm_eval_adapter ARGS``: ``lm_eval ARGS`` with introspect added.

For environments that switch the start-up hook off (``INTROSPECT_DISABLE_LM_EVAL_HOOK=1``)
or never installed the ``.pth`` file: this runs lm-eval's own command line after
registering ``--model introspect`` and the introspect tasks in this one process, so
neither ``--include_path`` nor the hook is needed (``introspect eval ARGS`` is the same).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run lm-eval's CLI with ``argv`` (default: this process's arguments)."""
    from harness_plugins.lm_eval_adapter import hook

    hook.install(force=True)
    from lm_eval.__main__ import cli_evaluate

    from harness_plugins.lm_eval_adapter.patches import register_model

    register_model()
    sys.argv = ["lm_eval", *(sys.argv[1:] if argv is None else argv)]
    cli_evaluate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
