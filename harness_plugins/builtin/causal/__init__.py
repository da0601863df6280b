"""The causal pair: input ablation and activation patching, and the verdict sentences they share.

Each type registers in its own module; `verdict` parses and scores the two answer
sentences (remain unchanged / would change) both types ask for.
"""
