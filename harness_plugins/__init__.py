"""lm-eval-introspect: lm-eval tasks that score a model's explanations of its own internals.

Kept empty on purpose: `lm_eval_introspect.pth` imports `harness_plugins.lm_eval_hook` at
interpreter start-up, so importing this package must cost nothing.
"""

__version__ = "0.1.0"
