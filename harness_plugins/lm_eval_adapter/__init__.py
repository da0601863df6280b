"""The lm-eval side: the task adapter, the ``introspect`` model and the task-index hook.

Everything lm-eval specific lives here; the reference pipeline (`harness_plugins.references`)
knows nothing of lm-eval's Task.
"""
