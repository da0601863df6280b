"""The ``hf`` backend: the intervention primitive as PyTorch hooks on a transformers model.

Batching, left padding with explicit position ids, prefix reuse (shared prefixes and
patched runs on the clean run's KV cache, `ground_truth.prefix_reuse`; on by default
here) and greedy generation come from `ground_truth.batching.BatchedBackend`; this module only
finds the sites in a transformers model (the decoder blocks, the MLP output projection,
the input embedding) and hooks them for one pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ground_truth.batching import BatchedBackend, SitePlan, logit_columns, position_ids
from ground_truth.errors import IntrospectError
from ground_truth.prefix_reuse import attention_window
from ground_truth.primitive import parse_site


def find_decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer blocks of any HF causal LM (also inside a PEFT wrapper)."""
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_layers = getattr(text_config, "num_hidden_layers", None)
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0
    ]
    for name, module in candidates:
        if len(module) == n_layers and name.rsplit(".", 1)[-1] in (
            "layers",
            "h",
            "blocks",
            "layer",
        ):
            return module
    for _name, module in candidates:
        if len(module) == n_layers:
            return module
    raise IntrospectError(
        f"cannot find the {n_layers} transformer blocks of {type(model).__name__}; "
        "the hf backend supports models whose blocks are one ModuleList"
    )


_MLP_NAMES = ("mlp", "feed_forward", "ffn")
_OUT_PROJECTIONS = ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "w2", "out_proj")


def find_mlp_output(block: torch.nn.Module) -> torch.nn.Module:
    """The output projection of a block's MLP, whose input is the MLP's hidden activation."""
    mlp = next((getattr(block, name) for name in _MLP_NAMES if hasattr(block, name)), None)
    if mlp is not None:
        for name in _OUT_PROJECTIONS:
            if hasattr(mlp, name):
                return getattr(mlp, name)
    raise IntrospectError(
        f"cannot find the MLP output projection of {type(block).__name__} (looked for "
        f"{'/'.join(_MLP_NAMES)} with {'/'.join(_OUT_PROJECTIONS)}); use another backend"
    )


def embedding_scale(model: torch.nn.Module) -> float | None:
    """The factor a model multiplies its input embedding module's output by before the first
    block (None: none, or applied inside the module as Gemma's scaled embeddings do).

    Granite-style models scale by ``embedding_multiplier`` in the model's forward; the
    ``hook_embed`` site is what the first block reads (less learned positions), so that a
    vector slot holds the same values under every family.
    """
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    multiplier = getattr(config or model.config, "embedding_multiplier", None)
    if isinstance(multiplier, (int, float)) and multiplier != 1:
        return float(multiplier)
    return None


def scaled_embed_hook(plan: SitePlan, site: str, output: torch.Tensor, scale: float | None) -> Any:
    """The embedding module's ``output`` with the plan applied to its scaled value (what the
    model reads); unwritten values stay the very output, bit for bit."""
    if scale is None:
        return plan.apply(site, output)
    scaled = output * scale
    changed = plan.apply(site, scaled)
    return output if changed is scaled else output + (changed - scaled) / scale


def _hidden_of(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


class ModuleBackend(BatchedBackend):
    """A batched backend over a transformers module tree: shape and weights read from it."""

    def __init__(self, loaded: Any, batch_size: int = 16, progress: bool = True) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        self.model = loaded.model
        self.layers = find_decoder_layers(self.model)
        self.embedding = self.model.get_input_embeddings()
        self.embed_scale = embedding_scale(self.model)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return int(self.embedding.embedding_dim)

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def mlp_output_weights(self, layer: int) -> torch.Tensor:
        projection = find_mlp_output(self.layers[layer])
        weight = projection.weight.detach().float().cpu()
        # nn.Linear stores [out, in] = [d_model, d_mlp]; GPT-2's Conv1D stores [in, out]
        return (
            weight.T.contiguous()
            if isinstance(projection, torch.nn.Linear)
            else weight.contiguous()
        )


class HFBackend(ModuleBackend):
    """Forward hooks on a transformers model; sites named as TransformerLens names them."""

    name = "hf"

    def __init__(
        self, loaded: Any, batch_size: int = 16, progress: bool = True, share_prefixes: bool = True
    ) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        self.share_prefixes = share_prefixes
        self.window = attention_window(self.model)

    @contextlib.contextmanager
    def _hooks(self, plan: SitePlan | None) -> Iterator[None]:
        """PyTorch hooks that hand each site's hidden state to the plan."""
        handles = []
        for site in plan.sites() if plan is not None else ():
            kind, layer = parse_site(site, self.n_layers)
            if kind == "embed":

                def embed_hook(module, args, output, _site=site):
                    return scaled_embed_hook(plan, _site, output, self.embed_scale)

                handles.append(self.embedding.register_forward_hook(embed_hook))
            elif kind == "mlp_post":

                def mlp_hook(module, args, _site=site):
                    return (plan.apply(_site, args[0]), *args[1:])

                handles.append(
                    find_mlp_output(self.layers[layer]).register_forward_pre_hook(mlp_hook)
                )
            elif kind == "pre":

                def pre_hook(module, args, kwargs, _site=site):
                    if args:
                        return (plan.apply(_site, args[0]), *args[1:]), kwargs
                    kwargs = dict(kwargs)
                    kwargs["hidden_states"] = plan.apply(_site, kwargs["hidden_states"])
                    return args, kwargs

                handles.append(
                    self.layers[layer].register_forward_pre_hook(pre_hook, with_kwargs=True)
                )
            else:

                def post_hook(module, args, output, _site=site):
                    hidden = plan.apply(_site, _hidden_of(output))
                    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

                handles.append(self.layers[layer].register_forward_hook(post_hook))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

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
        with self._hooks(plan):
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=position_ids(mask, ids.shape[1]),
                past_key_values=past,
                use_cache=use_cache,
                logits_to_keep=logit_columns(all_logits),
            )
        return out.logits, out.past_key_values if use_cache else None
