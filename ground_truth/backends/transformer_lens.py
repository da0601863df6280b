"""The ``transformer_lens`` backend: the intervention primitive on TransformerLens 4.x hooks.

The subject's own weights are wrapped in a `TransformerBridge` (no second download and no
second copy of the weights): the bridge is built with TransformerLens's
``build_bridge_from_module`` around a *structural copy* of ``loaded.model`` whose modules
are new objects but whose parameters and buffers are the very tensors of the original.
The copy is needed because the bridge rewires the module tree it is given in place
(it swaps blocks and projections for its hooked wrappers, which also renames the
state-dict keys), while the original model is shared with the hf backend, the explainer
and the fingerprint. No TransformerLens weight processing is enabled (no fold_ln, no
centering, no compatibility mode), so the residual stream is the HF model's hidden states.
TransformerLens does recompute attention itself (eager matmul and softmax, so that scores
and patterns have hooks) instead of calling the model's attention kernel, and fused QKV
projections (GPT-2) are split into views of the same storage: results equal the hf
backend's up to float rounding (about 1e-6 in float32), not bit for bit.

Reads and writes are TransformerLens hook functions on the sites the contract names
(``hook_embed``, ``blocks.L.hook_resid_pre``/``hook_resid_post``, ``blocks.L.mlp.hook_post``).
Batching, padding, positions and greedy generation are `ground_truth.batching`'s, as for the
hf backend; the bridge hands back the HF KV cache (``return_type="logits_and_cache"``), and
the hooks are attached for the prompt pass only.

A PEFT subject is merged into a copy first (``merge_and_unload`` on a structural copy whose
adapted base layers alone are real copies), because the bridge needs a plain transformers
model; the PEFT model itself is left untouched.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Collection
from typing import Any

import torch

from ground_truth.batching import BatchedBackend, SitePlan, logit_columns, position_ids
from ground_truth.errors import IntrospectError


def _shared_tensor_copy(model: torch.nn.Module, private: Collection[int] = ()) -> Any:
    """A deep copy of ``model``'s modules that shares its parameters and buffers.

    Tensors whose id is in ``private`` are copied for real (what a merge will overwrite).
    """
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if id(tensor) not in private:
            memo[id(tensor)] = tensor
    return copy.deepcopy(model, memo)


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def _merged_copy(model: Any) -> torch.nn.Module:
    """Merge a PEFT model's adapters into a copy; only the adapted base layers are copied."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError as error:  # a PEFT model without peft importable: nothing to merge with
        raise IntrospectError(
            "the transformer_lens backend needs a merged model, and peft is not importable to "
            "merge this one; merge the adapter (merge_and_unload) or use backend=hf"
        ) from error
    private: set[int] = set()
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            base = module.get_base_layer()
            private.update(id(t) for t in itertools.chain(base.parameters(), base.buffers()))
    duplicate = _shared_tensor_copy(model, private)
    try:
        return duplicate.merge_and_unload(safe_merge=True)
    except Exception as error:
        reason = (str(error).splitlines() or [""])[0]
        raise IntrospectError(
            f"the transformer_lens backend needs a merged model and this PEFT adapter cannot "
            f"be merged ({type(error).__name__}: {reason}); use backend=hf"
        ) from error


def build_bridge(model: Any) -> Any:
    """A TransformerBridge over ``model``'s weights, leaving ``model`` itself unchanged."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES
    from transformer_lens.model_bridge.sources import build_bridge_from_module
    from transformer_lens.model_bridge.sources._hf_format import (
        determine_architecture_from_hf_config,
    )

    source = _merged_copy(model) if _is_peft(model) else _shared_tensor_copy(model)
    config = source.config
    # the class actually loaded first: config.architectures may name another head
    architecture = type(source).__name__
    try:
        if architecture not in SUPPORTED_ARCHITECTURES:
            architecture = determine_architecture_from_hf_config(config)
    except ValueError:
        names = ", ".join(getattr(config, "architectures", None) or [type(source).__name__])
        raise IntrospectError(
            f"the transformer_lens backend cannot wrap {names}: TransformerLens has no "
            "architecture adapter for it; use backend=hf"
        ) from None
    try:
        bridge = build_bridge_from_module(source, architecture, hf_config=copy.deepcopy(config))
        _pass_the_kv_cache(bridge)
        bridge.eval()
        _check_reproduces(bridge, model, architecture)
    except IntrospectError:
        raise
    except Exception as error:  # an adapter that does not fit this config: one line, no traceback
        reason = (str(error).splitlines() or [""])[0][:200]
        raise IntrospectError(
            f"the transformer_lens backend cannot run {architecture} "
            f"({type(error).__name__}: {reason}); use backend=hf"
        ) from None
    return bridge


PROBE_LENGTH = 12
"""Tokens of the pass that checks a new bridge against the model it wraps."""


def _check_reproduces(bridge: Any, model: Any, architecture: str) -> None:
    """Refuse a bridge whose logits are not the model's own (up to float rounding): an
    adapter that computes another function would give silently wrong references."""
    embedding = model.get_input_embeddings()
    vocab = int(embedding.num_embeddings)
    ids = (torch.arange(PROBE_LENGTH, device=embedding.weight.device) * 7919 % vocab)[None]
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask).logits.float()
        got = bridge(ids, attention_mask=mask, return_type="logits").float()
    scale = float(expected.abs().max()) or 1.0
    error = float((got - expected).abs().max()) / scale
    tolerance = 1e-4 if embedding.weight.dtype == torch.float32 else 5e-2
    if not error <= tolerance:  # NaN too
        raise IntrospectError(
            f"the transformer_lens backend does not reproduce {architecture}: its logits "
            f"differ from the model's by {error:.2g} of their range; use backend=hf"
        )


def _cache_as_past_key_values(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    if kwargs.get("cache") is None or kwargs.get("past_key_values") is not None:
        return None
    return args, {**kwargs, "past_key_values": kwargs["cache"]}


def _pass_the_kv_cache(bridge: Any) -> None:
    """Hand the KV cache to the bridge's attention components under the name they read.

    Transformers 5.x decoder layers pass the cache to attention as ``cache=`` (the old
    ``past_key_values=`` is deprecated), while TransformerLens's attention bridges, which
    recompute attention themselves, read only ``past_key_values`` (or ``layer_past``):
    without this, the prompt pass leaves the cache empty and every later generation step
    attends to its own token alone.
    """
    for module in bridge.modules():
        if hasattr(module, "_update_kv_cache"):
            module.register_forward_pre_hook(_cache_as_past_key_values, with_kwargs=True)


class TransformerLensBackend(BatchedBackend):
    """TransformerLens hook points on the subject's own weights; results equal the hf backend's."""

    name = "transformer_lens"

    def __init__(self, loaded: Any, batch_size: int = 16, progress: bool = True) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        self.bridge = build_bridge(loaded.model)
        self._device = loaded.model.get_input_embeddings().weight.device

    @property
    def n_layers(self) -> int:
        return int(self.bridge.cfg.n_layers)

    @property
    def d_model(self) -> int:
        return int(self.bridge.cfg.d_model)

    @property
    def device(self) -> torch.device:
        return self._device

    def mlp_output_weights(self, layer: int) -> torch.Tensor:
        """TransformerLens's W_out of the block, [d_mlp, d_model], read from the HF weights."""
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer {layer} out of range 0..{self.n_layers - 1}")
        return self.bridge.blocks[layer].mlp.W_out.detach().float().cpu().contiguous()

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
        """One bridge pass; the plan's sites are TransformerLens hook names already."""
        hooks = [
            (site, lambda activation, hook, _site=site: plan.apply(_site, activation))
            for site in sorted(plan.sites() if plan is not None else ())
        ]
        with self.bridge.hooks(fwd_hooks=hooks):
            out = self.bridge(
                ids,
                attention_mask=mask,
                position_ids=position_ids(mask, ids.shape[1]),
                return_type="logits_and_cache" if use_cache else "logits",
                past_key_values=past,
                use_cache=use_cache,
                logits_to_keep=logit_columns(all_logits),
            )
        return out if not use_cache else out[0], out[1] if use_cache else None
