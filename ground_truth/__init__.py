"""Everything that touches a subject model's internals; nothing here knows about lm-eval."""
