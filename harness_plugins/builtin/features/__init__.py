"""Feature descriptions: describe a subject vector (docs/methods.md).

`features` is the explanation type, `scoring` its label-free scores (detection, fuzzing,
simulation), `sources` the built-in feature sources (concept directions, MLP neurons) and
`sae_source` / `sae_labels` the SAE features read from sae-lens folders.
"""
