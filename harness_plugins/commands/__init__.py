"""The ``introspect`` command and what it runs: ground truth, gate, plots, matrix, training."""
