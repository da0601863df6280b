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
Batching follows the hf backend: sorted by length, left-padded, explicit position ids from
the attention mask. Generation is a greedy loop over the HF KV cache that the bridge hands
back (``return_type="logits_and_cache"``); the hooks are attached for the prompt pass only.

A PEFT subject is merged into a copy first (``merge_and_unload`` on a structural copy whose
adapted base layers alone are real copies), because the bridge needs a plain transformers
model; the PEFT model itself is left untouched.
"""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ground_truth.primitive import ForwardResult, InterventionBackend, Read, Write, parse_site
from harness_plugins.errors import IntrospectError

_HOOK_NAMES = {
    "pre": "blocks.{layer}.hook_resid_pre",
    "post": "blocks.{layer}.hook_resid_post",
    "mlp_post": "blocks.{layer}.mlp.hook_post",
}


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
    bridge = build_bridge_from_module(source, architecture, hf_config=copy.deepcopy(config))
    bridge.eval()
    return bridge


class _Plan:
    """Writes and reads of one batch by TransformerLens hook name, in padded coordinates."""

    def __init__(self) -> None:
        self.writes: dict[str, list[tuple[int, int, Write]]] = defaultdict(list)
        self.reads: dict[str, list[tuple[int, int | slice, int]]] = defaultdict(list)
        self.results: dict[int, torch.Tensor] = {}

    def hook(self, name: str) -> Callable[..., torch.Tensor]:
        """The hook function of one site: apply its writes, then record its reads."""
        writes = self.writes.get(name, ())
        reads = self.reads.get(name, ())

        def hook_fn(activation: torch.Tensor, hook: Any) -> torch.Tensor:
            if writes:
                activation = activation.clone()
                for batch_row, column, write in writes:
                    vector = write.vector.to(device=activation.device, dtype=activation.dtype)
                    if write.mode == "add":
                        activation[batch_row, column] += vector
                    else:
                        activation[batch_row, column] = vector
            for batch_row, columns, read_index in reads:
                value = activation[batch_row, columns]
                self.results[read_index] = value.detach().float().cpu().clone()
            return activation

        return hook_fn

    def fwd_hooks(self) -> list[tuple[str, Callable[..., torch.Tensor]]]:
        return [(name, self.hook(name)) for name in sorted(set(self.writes) | set(self.reads))]


class TransformerLensBackend(InterventionBackend):
    """TransformerLens hook points on the subject's own weights; results equal the hf backend's."""

    name = "transformer_lens"

    def __init__(self, loaded: Any, batch_size: int = 16, progress: bool = True) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        self.bridge = build_bridge(loaded.model)
        self._device = loaded.model.get_input_embeddings().weight.device
        tokenizer = loaded.tokenizer
        pad = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        self.pad_id = int(pad if pad is not None else 0)

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

    # ------------------------------------------------------------------ batching

    def _batches(self, sequences: Sequence[Sequence[int]]) -> list[list[int]]:
        order = sorted(range(len(sequences)), key=lambda i: (-len(sequences[i]), i))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _pad(self, rows: list[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        offsets = []
        for i, row in enumerate(rows):
            if len(row) == 0:
                raise ValueError("cannot run an empty token sequence")
            offset = width - len(row)
            ids[i, offset:] = torch.as_tensor(list(row), dtype=torch.long)
            mask[i, offset:] = 1
            offsets.append(offset)
        return ids.to(self.device), mask.to(self.device), offsets

    def _hook_name(self, site: str) -> str:
        kind, layer = parse_site(site, self.n_layers)
        return "hook_embed" if kind == "embed" else _HOOK_NAMES[kind].format(layer=layer)

    def _plan(
        self,
        batch: list[int],
        lengths: Sequence[int],
        offsets: list[int],
        writes: Sequence[Write],
        reads: Sequence[Read],
    ) -> _Plan:
        plan = _Plan()
        where = {row: i for i, row in enumerate(batch)}

        def column(row: int, position: int, what: str) -> int:
            length = lengths[row]
            index = position + length if position < 0 else position
            if not 0 <= index < length:
                raise ValueError(
                    f"{what}: position {position} outside sequence {row} of length {length}"
                )
            return offsets[where[row]] + index

        for write in writes:
            if write.row in where:
                plan.writes[self._hook_name(write.site)].append(
                    (where[write.row], column(write.row, write.position, "write"), write)
                )
        for index, read in enumerate(reads):
            if read.row in where:
                name = self._hook_name(read.site)
                if read.position is None:  # the whole sequence, without its padding
                    columns: int | slice = slice(offsets[where[read.row]], None)
                else:
                    columns = column(read.row, read.position, "read")
                plan.reads[name].append((where[read.row], columns, index))
        return plan

    def _run(self, plan: _Plan | None, ids: torch.Tensor, mask: torch.Tensor, **kwargs: Any) -> Any:
        """One bridge forward with explicit positions, under the plan's hooks if any."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        hooks = plan.fwd_hooks() if plan is not None else []
        with self.bridge.hooks(fwd_hooks=hooks):
            return self.bridge(ids, attention_mask=mask, position_ids=positions, **kwargs)

    # ------------------------------------------------------------------ primitive

    @torch.inference_mode()
    def forward(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        reads: Sequence[Read] = (),
        writes: Sequence[Write] = (),
        score_from: Sequence[int] | None = None,
        description: str = "forward",
    ) -> ForwardResult:
        lengths = [len(s) for s in sequences]
        for site in {item.site for item in itertools.chain(reads, writes)}:
            parse_site(site, self.n_layers)  # a bad site is named even if its row is absent
        batches = self._batches(sequences)
        logits: list[torch.Tensor | None] = [None] * len(sequences)
        read_values: dict[int, torch.Tensor] = {}
        scored: list[torch.Tensor | None] = [None] * len(sequences)
        greedy: list[bool] = [False] * len(sequences)
        bar = tqdm(
            total=len(sequences),
            desc=description,
            unit="seq",
            disable=not self.progress or len(batches) < 2,
        )
        for batch in batches:
            ids, mask, offsets = self._pad([sequences[i] for i in batch])
            plan = self._plan(batch, lengths, offsets, writes, reads)
            out = self._run(
                plan,
                ids,
                mask,
                return_type="logits",
                use_cache=False,
                logits_to_keep=0 if score_from else 1,
            )
            last = out[:, -1, :].float().cpu()
            for i, row in enumerate(batch):
                logits[row] = last[i]
                if score_from:
                    scored[row], greedy[row] = self._score(
                        out[i], ids[i], offsets[i], score_from[row], lengths[row]
                    )
            read_values.update(plan.results)
            bar.update(len(batch))
        bar.close()
        return ForwardResult(
            last_logits=torch.stack(logits) if logits else torch.empty(0),
            reads=[read_values[i] for i in range(len(reads))],
            token_logprobs=scored if score_from else None,
            greedy=greedy if score_from else None,
        )

    @staticmethod
    def _score(
        logits: torch.Tensor, ids: torch.Tensor, offset: int, start: int, length: int
    ) -> tuple[torch.Tensor, bool]:
        """Log-probabilities of tokens start..length-1 of one (left-padded) sequence."""
        if not 1 <= start <= length:
            raise ValueError(f"score_from {start} outside 1..{length}")
        predicting = logits[offset + start - 1 : offset + length - 1].float().log_softmax(-1)
        targets = ids[offset + start : offset + length]
        chosen = predicting.gather(-1, targets[:, None])[:, 0]
        return chosen.cpu(), bool((predicting.argmax(-1) == targets).all())

    @torch.inference_mode()
    def generate(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        writes: Sequence[Write] = (),
        stop_token_ids: Sequence[int] = (),
        description: str = "generate",
    ) -> list[list[int]]:
        lengths = [len(s) for s in sequences]
        batches = self._batches(sequences)
        results: list[list[int]] = [[] for _ in sequences]
        stop_set = set(stop_token_ids)
        stops = torch.tensor(sorted(stop_set), dtype=torch.long, device=self.device)
        bar = tqdm(
            total=len(sequences),
            desc=description,
            unit="seq",
            disable=not self.progress or len(batches) < 2,
        )
        for batch in batches:
            ids, mask, offsets = self._pad([sequences[i] for i in batch])
            plan = self._plan(batch, lengths, offsets, writes, ())
            new_tokens = self._greedy(ids, mask, plan, max_new_tokens, stops)
            for i, row in enumerate(batch):
                tokens = new_tokens[i].tolist()
                for n, token in enumerate(tokens):
                    if token in stop_set:
                        tokens = tokens[: n + 1]
                        break
                results[row] = tokens
            bar.update(len(batch))
        bar.close()
        return results

    def _greedy(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        plan: _Plan,
        max_new_tokens: int,
        stops: torch.Tensor,
    ) -> torch.Tensor:
        """Greedy decoding over the HF cache; only the prompt pass runs under the hooks."""
        generated: list[torch.Tensor] = []
        if max_new_tokens <= 0:
            return ids.new_zeros((ids.shape[0], 0))
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        logits, cache = self._run(
            plan, ids, mask, return_type="logits_and_cache", use_cache=True, logits_to_keep=1
        )
        for step in range(max_new_tokens):
            token = logits[:, -1, :].argmax(-1)
            generated.append(token)
            if stops.numel():
                finished |= torch.isin(token, stops)
            if bool(finished.all()) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            logits, cache = self._run(
                None,
                token[:, None],
                mask,
                return_type="logits_and_cache",
                past_key_values=cache,
                logits_to_keep=1,
            )
        return torch.stack(generated, dim=1)
