"""The ``nnsight`` backend: the intervention primitive as nnsight traces over the subject.

The subject's own module (``loaded.model``, shared with the explainer in
self-explanation) is wrapped with `nnsight.NNsight`, which instruments it in place and
leaves it inert outside a trace, so the ``hf`` backend and lm-eval keep running the very
same weights. `nnsight.TransformersModel` is not used: it builds a transformers pipeline
around the module and flips the shared tokenizer's ``padding_side`` to ``left``, and it
adds nothing here, since this backend pads and positions tokens itself.

Padding follows the ``hf`` backend exactly, so that the two agree to float rounding:
sequences sorted by length, left-padded (every sequence ends at the last column), with
explicit position ids from the attention mask (GPT-2's learned positions never see the
padding). Inside one trace the sites are visited in execution order (embedding, then per
block: its input, the MLP's hidden activation, its output), since nnsight serves
``.input``/``.output`` in the order the forward pass reaches them. Generation is a
greedy loop over the KV cache: the prompt pass runs in a trace with the writes, the
decode steps run the plain module, so writes apply to the prompt pass only.
"""

from __future__ import annotations

from typing import Any

import nnsight
import torch

from ground_truth.backends.hf import ModuleBackend, find_mlp_output, scaled_embed_hook
from ground_truth.batching import SitePlan, logit_columns, position_ids
from ground_truth.primitive import parse_site

Key = tuple[str, int]  # (site kind, layer) as `parse_site` returns it

# where a site kind sits inside one block, in execution order
_BLOCK_ORDER = {"pre": 0, "mlp_post": 1, "post": 2}


def _execution_order(key: Key) -> tuple[int, int]:
    kind, layer = key
    return (-1, 0) if kind == "embed" else (layer, _BLOCK_ORDER[kind])


class NNsightBackend(ModuleBackend):
    """Reads and writes as nnsight interventions; sites named as TransformerLens names them."""

    name = "nnsight"

    def __init__(self, loaded: Any, batch_size: int = 16, progress: bool = True) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        # The same module object, instrumented in place; several envoys may share it.
        self.envoy = nnsight.NNsight(self.model)
        names = {id(module): name for name, module in self.model.named_modules()}

        def envoy_of(module: torch.nn.Module) -> Any:
            return self.envoy.get(names[id(module)])

        layer_envoys = [envoy_of(layer) for layer in self.layers]
        # (envoy, attribute) serving each site: the value the hf backend's hook sees there
        self._sites: dict[Key, tuple[Any, str]] = {
            ("embed", 0): (envoy_of(self.embedding), "output")
        }
        for layer, envoy in enumerate(layer_envoys):
            self._sites[("pre", layer)] = (envoy, "input")
            self._sites[("post", layer)] = (envoy, "output")
            self._sites[("mlp_post", layer)] = (
                envoy_of(find_mlp_output(self.layers[layer])),
                "input",
            )

    # ------------------------------------------------------------------ one pass

    def _visit(self, site: str, plan: SitePlan) -> None:
        """Inside a trace: hand this site's value to the plan (writes, then reads)."""
        envoy, attribute = self._sites[parse_site(site, self.n_layers)]
        value = getattr(envoy, attribute)  # parks until the forward pass reaches the site
        hidden = value[0] if isinstance(value, tuple) else value
        if envoy is self._sites[("embed", 0)][0]:  # what the first block reads (any scale)
            changed = scaled_embed_hook(plan, site, hidden, self.embed_scale)
        else:
            changed = plan.apply(site, hidden)
        if plan.writes.get(site):
            setattr(
                envoy, attribute, (changed, *value[1:]) if isinstance(value, tuple) else changed
            )

    def run(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        plan: SitePlan | None,
        *,
        past: Any = None,
        all_logits: bool | int = False,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """One pass: under an nnsight trace when the plan has sites, else the plain module."""
        inputs = {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": position_ids(mask, ids.shape[1]),
            "past_key_values": past,
            "use_cache": use_cache,
            "logits_to_keep": logit_columns(all_logits),
        }
        sites = (
            sorted(plan.sites(), key=lambda s: _execution_order(parse_site(s, self.n_layers)))
            if plan
            else []
        )
        if not sites:
            out = self.model(**inputs)
        else:
            with self.envoy.trace(**inputs):
                for site in sites:
                    self._visit(site, plan)
                out = nnsight.save(self.envoy.output)
        return out.logits, out.past_key_values if use_cache else None
