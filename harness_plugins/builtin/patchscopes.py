"""Patchscopes (research.md §3): read a subject's hidden state by patching it into the explainer.

``patchscope_next_token``: the hidden state of a source text at one position and layer is
patched into the explainer's token-identity prompt ("cat -> cat\\n1135 -> 1135\\nhello ->
hello\\n?") at its last token, same layer; Precision@1 asks whether the explainer's next
token is the subject's own next token at the source position, surprisal is the
subject's -log p of the explainer's token. The logit lens (the hidden state through the
subject's own final norm and unembedding) is the baseline, per layer.

``patchscope_attributes``: the hidden state of a subject's last token in a source
sentence ("France is a country in Europe.") is patched into a relation template at its
placeholder ("The capital city of x is"), and the explainer generates ~10 tokens;
correct when the object appears. Only facts the subject states unpatched are kept. A
logistic-regression probe on the same hidden states is the baseline.

Both sweep layers (option ``layers``) and report ``<metric>_layerNN`` plus the mean over
layers; ``introspect plot`` draws them as curves.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from harness_plugins import vectors
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, Metric, ReferenceContext, mean
from harness_plugins.options import Option
from harness_plugins.partition import partition_of, select
from harness_plugins.plugins import hookimpl

IDENTITY_PROMPT = "cat -> cat\n1135 -> 1135\nhello -> hello\n?"


def _rng(*parts: Any) -> random.Random:
    return random.Random(
        int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)
    )


def parse_layers(text: str, n_layers: int) -> list[int]:
    """'all', 'every:K', or a comma list of block indices (negatives from the end)."""
    text = str(text).strip()
    if text == "all":
        return list(range(n_layers))
    if text.startswith("every:"):
        step = int(text.split(":", 1)[1])
        return list(range(0, n_layers, max(1, step)))
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise IntrospectError(
            f"layers={text!r}: use all, every:K or a comma list like 0,4,8"
        ) from None
    resolved = sorted({layer + n_layers if layer < 0 else layer for layer in layers})
    if not resolved or resolved[0] < 0 or resolved[-1] >= n_layers:
        raise IntrospectError(f"layers={text!r} outside 0..{n_layers - 1}")
    return resolved


def per_layer_metrics(
    layers: Sequence[int], names: Sequence[tuple[str, bool]]
) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    for name, higher in names:
        metrics[name] = Metric(mean, higher_is_better=higher)
        for layer in layers:
            metrics[f"{name}_layer{layer:02d}"] = Metric(mean, higher_is_better=higher)
    return metrics


def _site(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


def _layer_mean(values: Mapping[int, float]) -> float:
    return float(sum(values.values()) / len(values)) if values else float("nan")


class PatchscopeNextToken(ExplanationType):
    name = "patchscope_next_token"
    version = "1"
    description = (
        "Does the explainer, patched with a subject hidden state, predict the subject's next token?"
    )
    needs_vectors = True
    uses_chat = False
    max_gen_tokens = 1
    stop_sequences = ()
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

    def questions(self, options: Mapping[str, Any]) -> Any:
        import datasets

        from harness_plugins.concept_bank import builtin_concepts, neutral_sentences
        from harness_plugins.question_bank import builtin_questions

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
        layers = parse_layers(context.options["layers"], backend.n_layers)
        last = backend.n_layers - 1
        sequences, positions = [], []
        for doc in questions:
            ids = tokenizer(doc["text"])["input_ids"]
            position = _rng("position", context.options["seed"], doc["question_id"]).randrange(
                1, len(ids)
            )
            sequences.append(ids[: position + 1])
            positions.append(position)
        reads = [Read(_site(layer), row, -1) for row in range(len(sequences)) for layer in layers]
        source = backend.forward(
            sequences, reads=reads, description="patchscope_next_token: source hidden states"
        )
        # stored in float16 (a vocabulary per document); every surprisal is read from that copy
        logprobs = source.last_logits.log_softmax(-1).half().float()
        # logit lens: each hidden state written over the last block's output of a one-token
        # sequence, so only the final norm and unembedding act on it
        anchor = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else sequences[0][0]]
        lens_writes = [Write(_site(last), i, 0, vector) for i, vector in enumerate(source.reads)]
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
        self, doc: Mapping[str, Any], options: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The raw target prompt; `requests` adds one patch per layer on its last token."""
        return [{"role": "user", "content": options["target_prompt"]}]

    def requests(
        self, doc: Mapping[str, Any], context: str, generation: Mapping[str, Any]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        return [
            ("generate_until", (prompt, {"until": [], "max_gen_toks": 1, "do_sample": False}))
            for prompt in self.layer_prompts(doc, context)
        ]

    def layer_prompts(self, doc: Mapping[str, Any], target_prompt: str) -> list[str]:
        return [
            target_prompt + vectors.intervention([(_site(layer), hidden, layer)])
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
            scores[f"p_at_1_layer{layer:02d}"] = hits[layer]
            scores[f"surprisal_layer{layer:02d}"] = surprisals[layer]
        lens_hits = {
            layer: float(c) for layer, c in zip(doc["layers"], doc["lens_correct"], strict=True)
        }
        lens_surprisal = dict(zip(doc["layers"], doc["lens_surprisal"], strict=True))
        for layer in doc["layers"]:
            scores[f"logit_lens_p_at_1_layer{layer:02d}"] = lens_hits[layer]
            scores[f"logit_lens_surprisal_layer{layer:02d}"] = lens_surprisal[layer]
        scores.update(
            p_at_1=_layer_mean(hits),
            surprisal=_layer_mean(surprisals),
            logit_lens_p_at_1=_layer_mean(lens_hits),
            logit_lens_surprisal=_layer_mean(lens_surprisal),
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


def _subject_end(
    tokenizer: Any, text: str, subject: str, add_special_tokens: bool = True
) -> tuple[list[int], int]:
    """Token ids of ``text`` and the index of the token that ends the subject's last mention."""
    end = text.rfind(subject)
    if end < 0:
        raise IntrospectError(f"patchscope_attributes: subject {subject!r} not in {text!r}")
    end += len(subject)
    encoded = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    for index, (start, stop) in enumerate(encoded["offset_mapping"]):
        if start < end <= stop:
            return list(encoded["input_ids"]), index
    raise IntrospectError(f"patchscope_attributes: no token ends {subject!r} in {text!r}")


def _x_split(prompt_target: str) -> tuple[str, str]:
    """The target template up to and including its placeholder x, and the rest."""
    import re

    matches = list(re.finditer(r"(?<![A-Za-z0-9])x(?![A-Za-z0-9])", prompt_target))
    if not matches:
        raise IntrospectError(
            f"patchscope_attributes: target prompt {prompt_target!r} has no placeholder x"
        )
    cut = matches[-1].end()
    return prompt_target[:cut], prompt_target[cut:]


class PatchscopeAttributes(ExplanationType):
    name = "patchscope_attributes"
    version = "1"
    description = (
        "Can the explainer, patched with a subject's hidden state, state an attribute of it?"
    )
    needs_vectors = True
    uses_chat = False
    stop_sequences = ("\n",)
    metrics = per_layer_metrics((), [("accuracy", True), ("probe_accuracy", True)])
    options = (
        Option(
            "layers",
            "every:2",
            "subject layers to read and patch: all, every:K, or a list like 0,4,8",
        ),
        Option(
            "data",
            None,
            "Patchscopes TSV (prompt_target, subject, object, prompt_source, position_source); default: built-in triples",
        ),
        Option(
            "new_tokens",
            10,
            "tokens generated after the patched target prompt",
            kind=int,
            minimum=1,
        ),
        Option(
            "probe",
            True,
            "fit the logistic-regression probe baseline on the train triples",
            kind=bool,
        ),
        Option(
            "only_known",
            True,
            "evaluate only facts the subject states unpatched (as the paper does)",
            kind=bool,
            affects_reference=False,
        ),
    )

    def _triples(self, options: Mapping[str, Any]) -> list[Any]:
        from harness_plugins.fact_bank import builtin_attribute_triples, load_patchscopes_tsv

        return (
            load_patchscopes_tsv(options["data"])
            if options["data"]
            else builtin_attribute_triples()
        )

    def _rows(self, options: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "question_id": t.triple_id,
                "relation": t.relation,
                "subject": t.subject,
                "object": t.object,
                "prompt_target": t.prompt_target,
                "prompt_source": t.prompt_source,
            }
            for t in self._triples(options)
        ]

    def questions(self, options: Mapping[str, Any]) -> Any:
        import datasets

        chosen = select(
            self._rows(options), lambda row: row["question_id"], options, "patchscope_attributes"
        )
        return datasets.Dataset.from_list(chosen)

    def _hidden(
        self, rows: Sequence[Mapping[str, Any]], context: ReferenceContext, layers: Sequence[int]
    ) -> list[list[Any]]:
        from ground_truth.primitive import Read

        tokenizer = context.subject.tokenizer
        encoded = [_subject_end(tokenizer, r["prompt_source"], r["subject"]) for r in rows]
        reads = [
            Read(_site(layer), row, position)
            for row, (_, position) in enumerate(encoded)
            for layer in layers
        ]
        result = context.backend.forward(
            [ids for ids, _ in encoded],
            reads=reads,
            description="patchscope_attributes: source hidden states",
        )
        return [
            result.reads[row * len(layers) : (row + 1) * len(layers)] for row in range(len(rows))
        ]

    def build_references(self, questions: Any, context: ReferenceContext) -> Any:
        import torch

        tokenizer = context.subject.tokenizer
        backend = context.backend
        options = context.options
        layers = parse_layers(options["layers"], backend.n_layers)
        docs = list(questions)
        # unpatched: does the subject itself complete the template for this subject?
        prompts = [tokenizer(_fill(d))["input_ids"] for d in docs]
        answers = backend.generate(
            prompts,
            max_new_tokens=options["new_tokens"],
            description="patchscope_attributes: unpatched answers",
        )
        answered = [
            d["object"].lower() in tokenizer.decode(a).lower()
            for d, a in zip(docs, answers, strict=True)
        ]
        hidden = self._hidden(docs, context, layers)
        probe_correct = (
            self._probe(docs, hidden, context, layers)
            if options["probe"]
            else [[float("nan")] * len(layers)] * len(docs)
        )
        columns = {
            "layers": [layers] * len(docs),
            "hidden": [torch.stack(h).tolist() for h in hidden],
            "answered": answered,
            "unpatched_answer": [tokenizer.decode(a) for a in answers],
            "probe_correct": probe_correct,
            "target": [d["object"] for d in docs],
        }
        for name, values in columns.items():
            questions = questions.add_column(name, values)
        return questions

    def _probe(
        self,
        docs: Sequence[Mapping[str, Any]],
        hidden: Sequence[Sequence[Any]],
        context: ReferenceContext,
        layers: Sequence[int],
    ) -> list[list[float]]:
        """Per layer: a logistic-regression probe trained on train triples predicts the object."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        fraction = context.options["test_fraction"]
        train = [
            r
            for r in self._rows(context.options)
            if partition_of(r["question_id"], fraction) == "train"
        ]
        if not train:
            return [[float("nan")] * len(layers) for _ in docs]
        train_hidden = self._hidden(train, context, layers)
        results = [[0.0] * len(layers) for _ in docs]
        for relation in {d["relation"] for d in docs}:
            train_rows = [i for i, r in enumerate(train) if r["relation"] == relation]
            test_rows = [i for i, d in enumerate(docs) if d["relation"] == relation]
            labels = [train[i]["object"] for i in train_rows]
            if len(set(labels)) < 2:
                continue
            for k in range(len(layers)):
                x = np.stack([train_hidden[i][k].numpy() for i in train_rows])
                with (
                    warnings.catch_warnings()
                ):  # few examples per object: a weak baseline by design
                    warnings.simplefilter("ignore")
                    probe = LogisticRegression(max_iter=500).fit(x, labels)
                guesses = probe.predict(np.stack([hidden[i][k].numpy() for i in test_rows]))
                for i, guess in zip(test_rows, guesses, strict=True):
                    results[i][k] = float(guess == docs[i]["object"])
        return results

    def keep(self, doc: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
        return bool(doc["answered"]) or not options["only_known"]

    def metrics_for(self, docs: Any) -> Mapping[str, Metric]:
        layers = docs[0]["layers"] if len(docs) else []
        return per_layer_metrics(layers, [("accuracy", True), ("probe_accuracy", True)])

    def explainer_messages(
        self, doc: Mapping[str, Any], options: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The raw relation template; `requests` patches its placeholder, once per layer."""
        return [{"role": "user", "content": doc["prompt_target"]}]

    def requests(
        self, doc: Mapping[str, Any], context: str, generation: Mapping[str, Any]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        head, tail = _x_split(doc["prompt_target"])
        kwargs = {
            "until": ["\n"],
            "max_gen_toks": int(generation.get("max_gen_toks", 10)),
            "do_sample": False,
        }
        return [
            (
                "generate_until",
                (head + vectors.intervention([(_site(layer), hidden, layer)]) + tail, kwargs),
            )
            for layer, hidden in zip(doc["layers"], doc["hidden"], strict=True)
        ]

    def score_results(
        self, doc: Mapping[str, Any], results: Sequence[Any], context: Any = None
    ) -> dict[str, Any]:
        hits = {
            layer: float(doc["object"].lower() in str(text).lower())
            for layer, text in zip(doc["layers"], results, strict=True)
        }
        probe = dict(zip(doc["layers"], doc["probe_correct"], strict=True))
        scores: dict[str, Any] = {}
        for layer in doc["layers"]:
            scores[f"accuracy_layer{layer:02d}"] = hits[layer]
            scores[f"probe_accuracy_layer{layer:02d}"] = probe[layer]
        scores.update(accuracy=_layer_mean(hits), probe_accuracy=_layer_mean(probe))
        return scores

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        raise NotImplementedError("scored per layer in score_results")

    def summarize_references(self, docs: Any) -> str:
        return f"{len(docs)} triples the subject states unpatched, {len(docs[0]['layers'])} layers"


def _fill(doc: Mapping[str, Any]) -> str:
    head, tail = _x_split(doc["prompt_target"])
    return head[:-1] + doc["subject"] + tail


@hookimpl
def introspect_register_explanation_types(register: Any) -> None:
    register(PatchscopeNextToken())
    register(PatchscopeAttributes())
