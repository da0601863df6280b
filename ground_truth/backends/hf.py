"""The ``hf`` backend: the intervention primitive as PyTorch hooks on a transformers model.

Sequences are sorted by length (less padding), left-padded (every sequence ends at the
last column, so next-token logits need the head at one position only) and given
explicit position ids from the attention mask, so padding never moves a position, also
for models with learned absolute positions (GPT-2). Writes and reads translate each
sequence's own positions to padded columns. Generation is a plain greedy loop over the
KV cache; writes apply to the prompt pass only.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ground_truth.primitive import ForwardResult, InterventionBackend, Read, Write, parse_site

# Shorter common prefixes are not worth a separate pass.
MIN_SHARED_PREFIX = 16


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
    raise ValueError(
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
    raise ValueError(f"cannot find the MLP output projection of {type(block).__name__}")


def _hidden_of(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


class _Plan:
    """Writes and reads of one batch, by site kind and layer, in padded coordinates."""

    def __init__(self, n_layers: int) -> None:
        self.n_layers = n_layers
        self.writes: dict[tuple[str, int], list[tuple[int, int, Write]]] = defaultdict(list)
        self.reads: dict[tuple[str, int], list[tuple[int, int | slice, int]]] = defaultdict(list)
        self.results: dict[int, torch.Tensor] = {}

    def sites(self) -> set[tuple[str, int]]:
        return set(self.writes) | set(self.reads)

    def apply(self, key: tuple[str, int], hidden: torch.Tensor) -> torch.Tensor:
        """Return ``hidden`` with this site's writes applied, after recording its reads."""
        writes = self.writes.get(key, ())
        if writes:
            hidden = hidden.clone()
            for batch_row, column, write in writes:
                vector = write.vector.to(device=hidden.device, dtype=hidden.dtype)
                if write.mode == "add":
                    hidden[batch_row, column] += vector
                else:
                    hidden[batch_row, column] = vector
        for batch_row, column, read_index in self.reads.get(key, ()):
            value = hidden[batch_row, column]
            self.results[read_index] = value.detach().float().cpu().clone()
        return hidden


class HFBackend(InterventionBackend):
    """Forward hooks on a transformers model; sites named as TransformerLens names them."""

    name = "hf"

    def __init__(
        self, loaded: Any, batch_size: int = 16, progress: bool = True, share_prefixes: bool = True
    ) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        self.share_prefixes = share_prefixes
        self.model = loaded.model
        self.layers = find_decoder_layers(self.model)
        self.embedding = self.model.get_input_embeddings()
        tokenizer = loaded.tokenizer
        pad = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        self.pad_id = int(pad if pad is not None else 0)

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

    # ------------------------------------------------------------------ batching

    def _batches(
        self, sequences: Sequence[Sequence[int]], by_prefix: bool = False
    ) -> list[list[int]]:
        """Batches of similar sequences: by length (less padding) or, to share prefixes, in
        token order (sequences that start alike end up together)."""
        if by_prefix:
            order = sorted(range(len(sequences)), key=lambda i: (tuple(sequences[i]), i))
        else:
            order = sorted(range(len(sequences)), key=lambda i: (-len(sequences[i]), i))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _shared_prefix(
        self,
        batch: list[int],
        sequences: Sequence[Sequence[int]],
        reads: Sequence[Read],
        writes: Sequence[Write],
        score_from: Sequence[int] | None,
    ) -> int:
        """How many leading tokens every sequence of the batch shares and no read, write or
        score needs on its own: that prefix runs once, its KV cache serves the batch."""
        if not self.share_prefixes or len(batch) < 2:
            return 0
        rows = [sequences[i] for i in batch]
        first = rows[0]
        shared = 0
        limit = min(len(row) for row in rows) - 1  # every row keeps a token of its own
        while shared < limit and all(row[shared] == first[shared] for row in rows[1:]):
            shared += 1
        members = set(batch)
        for item in (*reads, *writes):
            if item.row in members:
                if item.position is None:
                    return 0
                length = len(sequences[item.row])
                shared = min(shared, item.position + length if item.position < 0 else item.position)
        if score_from:
            shared = min([shared, *(score_from[i] - 1 for i in batch)])
        return shared if shared >= MIN_SHARED_PREFIX else 0

    def _prefix_cache(self, prefix: Sequence[int], copies: int) -> Any:
        ids = torch.as_tensor([list(prefix)], dtype=torch.long, device=self.device)
        positions = torch.arange(len(prefix), device=self.device)[None]
        out = self.model(input_ids=ids, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        cache.batch_repeat_interleave(copies)
        return cache

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

    def _plan(
        self,
        batch: list[int],
        lengths: Sequence[int],
        offsets: list[int],
        writes: Sequence[Write],
        reads: Sequence[Read],
        read_indices: Sequence[int],
        start: int = 0,
    ) -> _Plan:
        """Writes and reads of one batch in padded columns (of the tokens after ``start``,
        when a shared prefix runs separately)."""
        plan = _Plan(self.n_layers)
        where = {row: i for i, row in enumerate(batch)}

        def column(row: int, position: int, what: str) -> int:
            length = lengths[row]
            index = position + length if position < 0 else position
            if not 0 <= index < length:
                raise ValueError(
                    f"{what}: position {position} outside sequence {row} of length {length}"
                )
            return offsets[where[row]] + index - start

        for write in writes:
            if write.row in where:
                key = parse_site(write.site, self.n_layers)
                plan.writes[key].append(
                    (where[write.row], column(write.row, write.position, "write"), write)
                )
        for read, index in zip(reads, read_indices, strict=True):
            if read.row in where:
                key = parse_site(read.site, self.n_layers)
                if read.position is None:  # the whole sequence, without its padding
                    columns = slice(offsets[where[read.row]], None)
                    plan.reads[key].append((where[read.row], columns, index))
                else:
                    plan.reads[key].append(
                        (where[read.row], column(read.row, read.position, "read"), index)
                    )
        return plan

    @contextlib.contextmanager
    def _hooks(self, plan: _Plan, first_call_only: bool) -> Iterator[None]:
        handles = []
        calls: dict[tuple[str, int], int] = defaultdict(int)

        def active(key: tuple[str, int]) -> bool:
            calls[key] += 1
            return not first_call_only or calls[key] == 1

        for key in plan.sites():
            kind, layer = key
            if kind == "embed":

                def embed_hook(module, args, output, _key=key):
                    return plan.apply(_key, output) if active(_key) else output

                handles.append(self.embedding.register_forward_hook(embed_hook))
            elif kind == "mlp_post":

                def mlp_hook(module, args, _key=key):
                    if not active(_key):
                        return None
                    return (plan.apply(_key, args[0]), *args[1:])

                handles.append(
                    find_mlp_output(self.layers[layer]).register_forward_pre_hook(mlp_hook)
                )
            elif kind == "pre":

                def pre_hook(module, args, kwargs, _key=key):
                    if not active(_key):
                        return None
                    if args:
                        return (plan.apply(_key, args[0]), *args[1:]), kwargs
                    kwargs = dict(kwargs)
                    kwargs["hidden_states"] = plan.apply(_key, kwargs["hidden_states"])
                    return args, kwargs

                handles.append(
                    self.layers[layer].register_forward_pre_hook(pre_hook, with_kwargs=True)
                )
            else:

                def post_hook(module, args, output, _key=key):
                    if not active(_key):
                        return output
                    hidden = plan.apply(_key, _hidden_of(output))
                    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

                handles.append(self.layers[layer].register_forward_hook(post_hook))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _model_call(
        self, ids: torch.Tensor, mask: torch.Tensor, start: int = 0, past: Any = None, **kwargs: Any
    ) -> Any:
        positions = start + (mask.cumsum(-1) - 1).clamp(min=0)
        if start:  # after a shared prefix held in ``past``
            mask = torch.cat([mask.new_ones((mask.shape[0], start)), mask], dim=1)
            kwargs["use_cache"] = True
        return self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=past,
            **kwargs,
        )

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
        batches = self._batches(sequences, by_prefix=self.share_prefixes)
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
            start = self._shared_prefix(batch, sequences, reads, writes, score_from)
            past = self._prefix_cache(sequences[batch[0]][:start], len(batch)) if start else None
            ids, mask, offsets = self._pad([sequences[i][start:] for i in batch])
            plan = self._plan(batch, lengths, offsets, writes, reads, range(len(reads)), start)
            with self._hooks(plan, first_call_only=False):
                out = self._model_call(
                    ids, mask, start, past, use_cache=False, logits_to_keep=0 if score_from else 1
                )
            last = out.logits[:, -1, :].float().cpu()
            for i, row in enumerate(batch):
                logits[row] = last[i]
                if score_from:
                    scored[row], greedy[row] = self._score(
                        out.logits[i],
                        ids[i],
                        offsets[i],
                        score_from[row] - start,
                        lengths[row] - start,
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
        stops = torch.tensor(sorted(set(stop_token_ids)), dtype=torch.long, device=self.device)
        bar = tqdm(
            total=len(sequences),
            desc=description,
            unit="seq",
            disable=not self.progress or len(batches) < 2,
        )
        for batch in batches:
            ids, mask, offsets = self._pad([sequences[i] for i in batch])
            plan = self._plan(batch, lengths, offsets, writes, (), ())
            new_tokens = self._greedy(ids, mask, plan, max_new_tokens, stops)
            for i, row in enumerate(batch):
                tokens = new_tokens[i].tolist()
                for n, token in enumerate(tokens):
                    if token in set(stop_token_ids):
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
        generated = []
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        with self._hooks(plan, first_call_only=True):
            out = self._model_call(ids, mask, use_cache=True, logits_to_keep=1)
            for step in range(max_new_tokens):
                token = out.logits[:, -1, :].argmax(-1)
                generated.append(token)
                if stops.numel():
                    finished |= torch.isin(token, stops)
                if bool(finished.all()) or step == max_new_tokens - 1:
                    break
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                position = (mask.sum(-1, keepdim=True) - 1).clamp(min=0)
                out = self.model(
                    input_ids=token[:, None],
                    attention_mask=mask,
                    position_ids=position,
                    past_key_values=out.past_key_values,
                    use_cache=True,
                    logits_to_keep=1,
                )
        return torch.stack(generated, dim=1) if generated else ids.new_zeros((ids.shape[0], 0))
