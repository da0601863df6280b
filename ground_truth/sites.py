"""Site names: the one naming scheme for activations, as TransformerLens names its hook points.

``hook_embed`` (token embeddings), ``blocks.{l}.hook_resid_pre`` (input of block l),
``blocks.{l}.hook_resid_post`` (output of block l, before any final norm) and
``blocks.{l}.mlp.hook_post`` (the MLP's hidden activation). Code builds them with `site`
and reads them with `parse_site`, never by hand. Kept free of torch so that modules
can name sites at import time.
"""

from __future__ import annotations

import re

_SITE = re.compile(r"hook_embed|blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|mlp\.hook_post)")
_KINDS = {"hook_resid_pre": "pre", "hook_resid_post": "post", "mlp.hook_post": "mlp_post"}
# the short kinds `site` takes -> the TransformerLens hook name inside block L
SITE_KINDS = {
    "resid_pre": "hook_resid_pre",
    "resid_post": "hook_resid_post",
    "mlp_post": "mlp.hook_post",
}


def site(kind: str, layer: int | None = None) -> str:
    """The one way to name a site: ``site("resid_post", 3)`` is ``blocks.3.hook_resid_post``.

    Kinds are ``embed`` (no layer), ``resid_pre``, ``resid_post`` and ``mlp_post``, named as
    TransformerLens names its hook points so that every backend reads the same string.
    """
    if kind == "embed":
        return "hook_embed"
    if kind not in SITE_KINDS:
        raise ValueError(f"unknown site kind {kind!r}; kinds are embed, {', '.join(SITE_KINDS)}")
    if layer is None:
        raise ValueError(f"site kind {kind!r} needs a layer")
    return f"blocks.{int(layer)}.{SITE_KINDS[kind]}"


def parse_site(site: str, n_layers: int) -> tuple[str, int]:
    """('embed', 0) | ('pre' | 'post' | 'mlp_post', layer), or a ValueError naming the site."""
    match = _SITE.fullmatch(site)
    if not match:
        raise ValueError(
            f"unknown site {site!r}; sites are hook_embed, blocks.L.hook_resid_pre, "
            "blocks.L.hook_resid_post and blocks.L.mlp.hook_post"
        )
    if site == "hook_embed":
        return "embed", 0
    layer = int(match.group(1))
    if not 0 <= layer < n_layers:
        raise ValueError(f"site {site!r}: layer {layer} out of range 0..{n_layers - 1}")
    return _KINDS[match.group(2)], layer
