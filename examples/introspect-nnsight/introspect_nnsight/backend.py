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

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import nnsight
import torch
from tqdm.auto import tqdm

from ground_truth.backends.hf import find_decoder_layers, find_mlp_output
from ground_truth.primitive import ForwardResult, InterventionBackend, Read, Write, parse_site

Key = tuple[str, int]  # (site kind, layer) as `parse_site` returns it

# where a site kind sits inside one block, in execution order
_BLOCK_ORDER = {"pre": 0, "mlp_post": 1, "post": 2}


def _execution_order(key: Key) -> tuple[int, int]:
    kind, layer = key
    return (-1, 0) if kind == "embed" else (layer, _BLOCK_ORDER[kind])


@dataclass
class _Plan:
    """One batch's writes and reads by site, in padded coordinates (row, column)."""

    writes: dict[Key, list[tuple[int, int, Write]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    reads: dict[Key, list[tuple[int, int | slice, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def sites(self) -> list[Key]:
        """Every site this batch touches, in the order the forward pass reaches them."""
        return sorted(set(self.writes) | set(self.reads), key=_execution_order)


class NNsightBackend(InterventionBackend):
    """Reads and writes as nnsight interventions; sites named as TransformerLens names them."""

    name = "nnsight"

    def __init__(self, loaded: Any, batch_size: int = 16, progress: bool = True) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        self.model = loaded.model
        # The same module object, instrumented in place; several envoys may share it.
        self.envoy = nnsight.NNsight(self.model)
        self.layers = find_decoder_layers(self.model)
        self.embedding = self.model.get_input_embeddings()
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
        # nn.Linear stores [d_model, d_mlp]; GPT-2's Conv1D already stores [d_mlp, d_model]
        if isinstance(projection, torch.nn.Linear):
            return weight.T.contiguous()
        return weight.contiguous()

    # ------------------------------------------------------------------ batching

    def _batches(self, sequences: Sequence[Sequence[int]]) -> list[list[int]]:
        """Indices grouped by length (longest first), so a batch carries little padding."""
        order = sorted(range(len(sequences)), key=lambda i: (-len(sequences[i]), i))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _pad(self, rows: list[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Left-pad ``rows``: ids, attention mask and each row's first real column."""
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
    ) -> _Plan:
        """Translate the writes and reads of this batch's sequences to padded columns.

        Done before the trace, so a bad site or position raises here, plainly, and not
        from inside nnsight's worker.
        """
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
                key = parse_site(write.site, self.n_layers)
                plan.writes[key].append(
                    (where[write.row], column(write.row, write.position, "write"), write)
                )
        for index, read in enumerate(reads):
            if read.row in where:
                key = parse_site(read.site, self.n_layers)
                if read.position is None:  # the whole sequence, without its padding
                    columns: int | slice = slice(offsets[where[read.row]], None)
                else:
                    columns = column(read.row, read.position, "read")
                plan.reads[key].append((where[read.row], columns, index))
        return plan

    # ------------------------------------------------------------------ tracing

    def _visit(self, key: Key, plan: _Plan, taken: dict[int, torch.Tensor]) -> None:
        """Inside a trace: apply this site's writes, then record its reads into ``taken``."""
        envoy, attribute = self._sites[key]
        value = getattr(envoy, attribute)  # parks until the forward pass reaches the site
        hidden = value[0] if isinstance(value, tuple) else value
        writes = plan.writes.get(key, ())
        if writes:
            hidden = hidden.clone()  # never edit a tensor the model may still hold
            for batch_row, column, write in writes:
                vector = write.vector.to(device=hidden.device, dtype=hidden.dtype)
                if write.mode == "add":
                    hidden[batch_row, column] += vector
                else:
                    hidden[batch_row, column] = vector
            setattr(envoy, attribute, (hidden, *value[1:]) if isinstance(value, tuple) else hidden)
        for batch_row, columns, index in plan.reads.get(key, ()):
            taken[index] = hidden[batch_row, columns].detach().float().cpu().clone()

    def _traced_call(
        self, ids: torch.Tensor, mask: torch.Tensor, plan: _Plan, **kwargs: Any
    ) -> tuple[Any, dict[int, torch.Tensor]]:
        """One forward pass of the padded batch under an nnsight trace applying ``plan``.

        Returns the model's output and the reads by index.
        """
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        sites = plan.sites()
        with self.envoy.trace(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs):
            taken = nnsight.save({})
            for key in sites:
                self._visit(key, plan, taken)
            output = nnsight.save(self.envoy.output)
        return output, taken

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
            # every position's logits only when scoring; otherwise the head runs once per row
            out, taken = self._traced_call(
                ids, mask, plan, use_cache=False, logits_to_keep=0 if score_from else 1
            )
            last = out.logits[:, -1, :].float().cpu()
            for i, row in enumerate(batch):
                logits[row] = last[i]
                if score_from:
                    scored[row], greedy[row] = _score(
                        out.logits[i], ids[i], offsets[i], score_from[row], lengths[row]
                    )
            read_values.update(taken)
            bar.update(len(batch))
        bar.close()
        return ForwardResult(
            last_logits=torch.stack(logits) if logits else torch.empty(0),
            reads=[read_values[i] for i in range(len(reads))],
            token_logprobs=scored if score_from else None,
            greedy=greedy if score_from else None,
        )

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
                    if token in stop_set:  # keep the stop token, drop what follows
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
        """Greedy tokens [batch, steps]: the prompt pass traced (writes), then plain decode steps."""
        if max_new_tokens <= 0:
            return ids.new_zeros((ids.shape[0], 0))
        out, _ = self._traced_call(ids, mask, plan, use_cache=True, logits_to_keep=1)
        generated = []
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        for step in range(max_new_tokens):
            token = out.logits[:, -1, :].argmax(-1)
            generated.append(token)
            if stops.numel():
                finished |= torch.isin(token, stops)
            if bool(finished.all()) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            position = (mask.sum(-1, keepdim=True) - 1).clamp(min=0)
            # outside any trace the instrumented module runs as plain PyTorch: no writes
            out = self.model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=position,
                past_key_values=out.past_key_values,
                use_cache=True,
                logits_to_keep=1,
            )
        return torch.stack(generated, dim=1)


def _score(
    logits: torch.Tensor, ids: torch.Tensor, offset: int, start: int, length: int
) -> tuple[torch.Tensor, bool]:
    """Log-probabilities of tokens ``start..length-1`` of one left-padded row, and whether
    each was the greedy choice (what a loglikelihood request needs)."""
    if not 1 <= start <= length:
        raise ValueError(f"score_from {start} outside 1..{length}")
    predicting = logits[offset + start - 1 : offset + length - 1].float().log_softmax(-1)
    targets = ids[offset + start : offset + length]
    chosen = predicting.gather(-1, targets[:, None])[:, 0]
    return chosen.cpu(), bool((predicting.argmax(-1) == targets).all())
