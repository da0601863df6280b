"""The lm-eval side: the task adapter, the ``introspect`` model and the task-index hook.

Everything lm-eval specific lives here; the reference pipeline (`harness_plugins.references`)
knows nothing of lm-eval's Task.
"""

MODEL_NAME = "introspect"
"""``lm_eval --model introspect``."""
CONTROL_MODEL_NAME = "introspect_control"
"""``lm_eval --model introspect_control``: the oracle, shuffled-oracle and constant controls."""
CONTROL_ARGUMENTS = frozenset({"control", "control_seed", "control_metric"})
"""The control model's own arguments (lm-eval mixes them into every task's metadata)."""
GROUP = "introspect"
"""``lm_eval --tasks introspect``: every explanation type, plugin types included."""
DATASET_PATH = "introspect"
"""The ``dataset_path`` of every introspect task: how the index tells our tasks from others."""
