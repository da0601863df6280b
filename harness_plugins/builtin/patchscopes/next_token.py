"""Patchscopes next-token prediction (docs/methods.md): read a subject's hidden state by patching it into the explainer.

``patchscope_next_token``: the hidden state of a source text at one position and layer is
patched into the explainer's token-identity prompt ("cat -> cat\\n1135 -> 1135\\nhello ->
hello\\n?") at its last token, same layer; Precision@1 asks whether the explainer's next
token is the subject's own next token at the source position, surprisal is the
subject's -log p of the explainer's token. The logit lens (the hidden state through the
subject's own final norm and unembedding) is the baseline, per layer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ground_truth.sites import site
from harness_plugins.builtin.patchscopes.common import (
    layer_mean,
    parse_layers,
    per_layer_metrics,
    seeded_rng,
)
from harness_plugins.explanation import ExplanationType, Metric, ReferenceContext
from harness_plugins.metric_names import layer_metric
from harness_plugins.options import Option
from harness_plugins.partition import select
from harness_plugins.prompts import vectors
from harness_plugins.task_options import TaskOptions

IDENTITY_PROMPT = "cat -> cat\n1135 -> 1135\nhello -> hello\n?"


class PatchscopeNextToken(ExplanationType):
    name = "patchscope_next_token"
    version = "1"
    description = (
        "Does the explainer, patched with a subject hidden state, predict the subject's next token?"
    )
    needs_vectors = True
    uses_chat = False
    writes_answer = False  # the explainer continues a patched prompt; it answers no question
    max_gen_tokens = 1
    stop_sequences = ()
    baselines = {"p_at_1": "logit_lens_p_at_1", "surprisal": "logit_lens_surprisal"}
    metrics = per_layer_metrics(
        (),
        [
            ("p_at_1", True),
            ("surprisal", False),
            ("logit_lens_p_at_1", True),
            ("logit_lens_surprisal", False),
        ],
    )
    options = (
        Option(
            "layers", "all", "subject layers to read and patch: all, every:K, or a list like 0,4,8"
        ),
        Option(
            "target_prompt",
            IDENTITY_PROMPT,
            "the explainer prompt; the patch goes on its last token",
            affects_reference=False,
        ),
    )

    def check_layers(self, options: TaskOptions, n_layers: int) -> None:
        parse_layers(options.layers, n_layers)

    def questions(self, options: TaskOptions) -> Any:
        import datasets

        from harness_plugins.banks.concepts import builtin_concepts, neutral_sentences
        from harness_plugins.banks.questions import builtin_questions

        texts = [s for c in builtin_concepts() for s in c.sentences] + neutral_sentences()
        texts += list(builtin_questions()["question"])
        rows = [
            {"question_id": "text-" + hashlib.sha256(text.encode()).hexdigest()[:12], "text": text}
            for text in texts
        ]
        chosen = select(rows, lambda row: row["question_id"], options, "patchscope_next_token")
        return datasets.Dataset.from_list(chosen)

    def build_references(self, questions: Any, context: ReferenceContext) -> Any:
        import datasets
        import torch

        from ground_truth.primitive import Read, Write

        tokenizer = context.subject.tokenizer
        backend = context.backend
        layers = parse_layers(context.options.layers, backend.n_layers)
        last = backend.n_layers - 1
        sequences, positions = [], []
        for doc in questions:
            ids = tokenizer(doc["text"])["input_ids"]
            position = seeded_rng("position", context.options.seed, doc["question_id"]).randrange(
                1, len(ids)
            )
            sequences.append(ids[: position + 1])
            positions.append(position)
        reads = [
            Read(site("resid_post", layer), row, -1)
            for row in range(len(sequences))
            for layer in layers
        ]
        source = backend.forward(
            sequences, reads=reads, description="patchscope_next_token: source hidden states"
        )
        # stored in float16 (a vocabulary per document); every surprisal is read from that copy
        logprobs = source.last_logits.log_softmax(-1).half().float()
        # logit lens: each hidden state written over the last block's output of a one-token
        # sequence, so only the final norm and unembedding act on it
        anchor = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else sequences[0][0]]
        lens_writes = [
            Write(site("resid_post", last), i, 0, vector) for i, vector in enumerate(source.reads)
        ]
        lens = backend.forward(
            [anchor] * len(source.reads),
            writes=lens_writes,
            description="patchscope_next_token: logit lens",
        )
        lens_tokens = lens.last_logits.argmax(-1).view(len(sequences), len(layers))
        columns: dict[str, list[Any]] = {
            k: []
            for k in (
                "position",
                "prefix",
                "layers",
                "hidden",
                "source_token_id",
                "source_token",
                "source_logprobs",
                "lens_correct",
                "lens_surprisal",
                "target",
            )
        }
        for row, ids in enumerate(sequences):
            best = int(logprobs[row].argmax())
            columns["position"].append(positions[row])
            columns["prefix"].append(tokenizer.decode(ids))
            columns["layers"].append(layers)
            columns["hidden"].append(
                torch.stack(source.reads[row * len(layers) : (row + 1) * len(layers)]).tolist()
            )
            columns["source_token_id"].append(best)
            columns["source_token"].append(tokenizer.decode([best]))
            columns["source_logprobs"].append(logprobs[row].tolist())
            columns["lens_correct"].append([bool(t == best) for t in lens_tokens[row].tolist()])
            columns["lens_surprisal"].append(
                [float(-logprobs[row, t]) for t in lens_tokens[row].tolist()]
            )
            columns["target"].append(tokenizer.decode([best]))
        for name, values in columns.items():
            questions = questions.add_column(name, values)
        half = datasets.Sequence(datasets.Value("float16"))  # exact: the values are float16 already
        return questions.cast_column("source_logprobs", half)

    def metrics_for(self, docs: Any) -> Mapping[str, Metric]:
        layers = docs[0]["layers"] if len(docs) else []
        return per_layer_metrics(
            layers,
            [
                ("p_at_1", True),
                ("surprisal", False),
                ("logit_lens_p_at_1", True),
                ("logit_lens_surprisal", False),
            ],
        )

    def explainer_messages(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> list[dict[str, str]]:
        """The raw target prompt; `requests` adds one patch per layer on its last token."""
        return [{"role": "user", "content": options.target_prompt}]

    def requests(
        self, doc: Mapping[str, Any], context: str, generation: Mapping[str, Any]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        return [
            ("generate_until", (prompt, {"until": [], "max_gen_toks": 1, "do_sample": False}))
            for prompt in self.layer_prompts(doc, context)
        ]

    def layer_prompts(self, doc: Mapping[str, Any], target_prompt: str) -> list[str]:
        return [
            target_prompt + vectors.intervention([(site("resid_post", layer), hidden, layer)])
            for layer, hidden in zip(doc["layers"], doc["hidden"], strict=True)
        ]

    def score_results(
        self, doc: Mapping[str, Any], results: Sequence[Any], context: Any = None
    ) -> dict[str, Any]:
        tokenizer = context.subject_tokenizer() if context is not None else None
        scores: dict[str, Any] = {}
        hits, surprisals = {}, {}
        for layer, text in zip(doc["layers"], results, strict=True):
            if str(text):
                hit = str(text).strip() == doc["source_token"].strip()
            else:
                hit = _end_of_sequence(tokenizer) == doc["source_token_id"]
            hits[layer] = float(hit)
            surprisals[layer] = self._surprisal(doc, str(text), hits[layer], tokenizer)
            scores[layer_metric("p_at_1", layer)] = hits[layer]
            scores[layer_metric("surprisal", layer)] = surprisals[layer]
        lens_hits = {
            layer: float(c) for layer, c in zip(doc["layers"], doc["lens_correct"], strict=True)
        }
        lens_surprisal = dict(zip(doc["layers"], doc["lens_surprisal"], strict=True))
        for layer in doc["layers"]:
            scores[layer_metric("logit_lens_p_at_1", layer)] = lens_hits[layer]
            scores[layer_metric("logit_lens_surprisal", layer)] = lens_surprisal[layer]
        scores.update(
            p_at_1=layer_mean(hits),
            surprisal=layer_mean(surprisals),
            logit_lens_p_at_1=layer_mean(lens_hits),
            logit_lens_surprisal=layer_mean(lens_surprisal),
        )
        return scores

    @staticmethod
    def _surprisal(doc: Mapping[str, Any], text: str, hit: float, tokenizer: Any) -> float:
        """-log p_source of the explainer's token (its id in the subject's vocabulary)."""
        if hit:
            token = doc["source_token_id"]
        elif not text and _end_of_sequence(tokenizer) is not None:
            token = _end_of_sequence(tokenizer)
        elif tokenizer is not None and text:
            ids = tokenizer.encode(text, add_special_tokens=False)
            if not ids:
                return float("nan")
            token = ids[0]
        else:
            return float("nan")
        return float(-doc["source_logprobs"][token])

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        raise NotImplementedError("scored per layer in score_results")

    def summarize_references(self, docs: Any) -> str:
        layers = docs[0]["layers"]
        lens = [sum(doc["lens_correct"][i] for doc in docs) / len(docs) for i in range(len(layers))]
        best = max(range(len(layers)), key=lambda i: lens[i])
        return f"{len(docs)} text positions, {len(layers)} layers; logit lens P@1 {lens[0]:.2f} at layer {layers[0]}, best {lens[best]:.2f} at layer {layers[best]}"


def _end_of_sequence(tokenizer: Any) -> int | None:
    """The token an empty generation stands for: lm-eval decodes without special tokens."""
    return None if tokenizer is None else tokenizer.eos_token_id
