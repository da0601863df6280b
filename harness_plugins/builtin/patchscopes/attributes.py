"""Patchscopes, ``patchscope_attributes``: the hidden state of a subject's last token in a source
sentence ("France is a country in Europe.") is patched into a relation template at its
placeholder ("The capital city of x is"), and the explainer generates ~10 tokens;
correct when the object appears. Only facts the subject states unpatched are kept. A
logistic-regression probe on the same hidden states is the baseline.

Both sweep layers (option ``layers``) and report ``<metric>_layerNN`` plus the mean over
layers; ``introspect plot`` draws them as curves. With ``target_layers`` the source state
of layer l is patched into each target layer l* (the paper's sweep), reported as
``accuracy_srcLL_tgtMM`` and drawn as an (l, l*) heatmap; ``accuracy_layerLL`` is then
the mean over targets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ground_truth.sites import site
from harness_plugins import metric_names
from harness_plugins.builtin.patchscopes.common import (
    layer_mean,
    parse_layers,
    per_layer_metrics,
)
from harness_plugins.builtin.patchscopes.probe import fitted_probe, predict
from harness_plugins.builtin.patchscopes.source import subject_end as _subject_end
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, Metric, ReferenceContext, mean
from harness_plugins.metric_names import layer_metric
from harness_plugins.options import Option
from harness_plugins.partition import partition_of, select
from harness_plugins.prompts import vectors
from harness_plugins.task_options import TaskOptions


def _x_split(prompt_target: str) -> tuple[str, str]:
    """The target template up to and including its placeholder x, and the rest."""
    matches = list(re.finditer(r"(?<![A-Za-z0-9])x(?![A-Za-z0-9])", prompt_target))
    if not matches:
        raise IntrospectError(
            f"patchscope_attributes: target prompt {prompt_target!r} has no placeholder x"
        )
    cut = matches[-1].end()
    return prompt_target[:cut], prompt_target[cut:]


class PatchscopeAttributes(ExplanationType):
    name = "patchscope_attributes"
    version = "3"
    description = (
        "Can the explainer, patched with a subject's hidden state, state an attribute of it?"
    )
    needs_vectors = True
    uses_chat = False
    writes_answer = False  # the explainer continues a patched prompt; it answers no question
    stop_sequences = ("\n",)
    metrics = per_layer_metrics((), [("accuracy", True), ("probe_accuracy", True)])
    baselines = {"accuracy": "probe_accuracy"}
    options = (
        Option(
            "layers",
            "every:2",
            "subject layers to read and patch: all, every:K, or a list like 0,4,8",
        ),
        Option(
            "target_layers",
            "same",
            "target layers l* the state of source layer l is patched into: same (l* = l), "
            "or all, every:K, a list; then every (l, l*) pair runs (accuracy_srcLL_tgtMM)",
        ),
        Option(
            "data",
            None,
            "Patchscopes TSV (prompt_target, subject, object, prompt_source, position_source); default: built-in triples",
            names_file=True,
        ),
        Option(
            "new_tokens",
            10,
            "tokens generated, both unpatched (does the subject know the fact?) and patched",
            kind=int,
            minimum=1,
        ),
        Option(
            "probe",
            True,
            "fit the logistic-regression probe baseline on the train triples (split by subject)",
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

    def check_layers(self, options: TaskOptions, n_layers: int) -> None:
        parse_layers(options.layers, n_layers)

    def _triples(self, options: TaskOptions) -> tuple[list[Any], str]:
        """The triples, and for a user's file how its rows were read (full/partial/skipped)."""
        from harness_plugins.banks.facts import builtin_attribute_triples
        from harness_plugins.banks.patchscopes_tsv import read_published_tsv

        if not options.data:
            return builtin_attribute_triples(), ""
        triples, counts = read_published_tsv(options.data)
        return triples, counts.describe()

    def validate(self, options: TaskOptions) -> None:
        """Read the user's TSV now, before any weights load: a bad file fails in seconds."""
        if options.data:
            self._triples(options)

    def generation_kwargs(self, options: TaskOptions) -> dict[str, Any]:
        """Patched generations are as long as the unpatched known-fact check."""
        return {"do_sample": False, "max_gen_toks": int(options.new_tokens)}

    def _rows(self, options: TaskOptions) -> list[dict[str, Any]]:
        triples, counts = self._triples(options)
        return [
            {
                "question_id": t.triple_id,
                "relation": t.relation,
                "subject": t.subject,
                "object": t.object,
                "prompt_target": t.prompt_target,
                "prompt_source": t.prompt_source,
                "position_source": t.position_source,
                "mention": t.mention or t.subject,
                "source_end": t.source_end,
                "data_rows": counts,
            }
            for t in triples
        ]

    def questions(self, options: TaskOptions) -> Any:
        import datasets

        # split by subject (entity), so the probe never sees a test subject in training
        chosen = select(self._rows(options), _entity, options, "patchscope_attributes")
        return datasets.Dataset.from_list(chosen)

    def _hidden(
        self, rows: Sequence[Mapping[str, Any]], context: ReferenceContext, layers: Sequence[int]
    ) -> list[list[Any]]:
        from ground_truth.primitive import Read

        tokenizer = context.subject.tokenizer
        encoded = [
            _subject_end(
                tokenizer,
                r["prompt_source"],
                r["subject"],
                position_source=r.get("position_source"),
                source_end=r.get("source_end"),
            )
            for r in rows
        ]
        reads = [
            Read(site("resid_post", layer), row, position)
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
        layers = parse_layers(options.layers, backend.n_layers)
        docs = list(questions)
        # unpatched: does the subject itself complete the template for this subject?
        prompts = [tokenizer(_fill(d))["input_ids"] for d in docs]
        answers = backend.generate(
            prompts,
            max_new_tokens=options.new_tokens,
            description="patchscope_attributes: unpatched answers",
        )
        answered = [
            d["object"].lower() in tokenizer.decode(a).lower()
            for d, a in zip(docs, answers, strict=True)
        ]
        hidden = self._hidden(docs, context, layers)
        probe_correct = (
            self._probe(docs, hidden, context, layers)
            if options.probe
            else [[float("nan")] * len(layers)] * len(docs)
        )
        columns = {
            "layers": [layers] * len(docs),
            "hidden": [torch.stack(h).tolist() for h in hidden],
            "answered": answered,
            "unpatched_answer": [tokenizer.decode(a) for a in answers],
            "probe_correct": probe_correct,
            "target": [d["object"] for d in docs],
            "new_tokens": [options.new_tokens] * len(docs),
            "target_layers": [_target_layers(options, backend.n_layers)] * len(docs),
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
        """Per layer: a logistic-regression probe trained on train triples predicts the object.

        Probes are artifacts, one per (relation, layer), fitted on that relation's train
        triples and keyed by the subject and those triples: only the relations of
        ``docs`` are read and fitted, once, and later builds (a wider keep window, a
        larger limit) reuse them.
        """
        import numpy as np
        from tqdm.auto import tqdm

        fraction = context.options.test_fraction
        tested = {_entity(d) for d in docs}
        train = [
            r
            for r in self._rows(context.options)
            if partition_of(_entity(r), fraction) == "train" and _entity(r) not in tested
        ]
        results = [[0.0] * len(layers) for _ in docs]
        if not train:
            return [[float("nan")] * len(layers) for _ in docs]
        relations = sorted({d["relation"] for d in docs})
        bar = tqdm(
            total=len(relations) * len(layers),
            desc="patchscope_attributes: probes",
            leave=False,
            disable=len(relations) * len(layers) < 8,
        )
        for relation in relations:
            rows = [r for r in train if r["relation"] == relation]
            test_rows = [i for i, d in enumerate(docs) if d["relation"] == relation]
            if len({r["object"] for r in rows}) < 2:
                bar.update(len(layers))
                continue
            read: list[list[Any]] = []
            for k, layer in enumerate(layers):
                probe = fitted_probe(rows, read, context, layer, self._hidden)
                guesses = predict(probe, np.stack([hidden[i][k].numpy() for i in test_rows]))
                for i, guess in zip(test_rows, guesses, strict=True):
                    results[i][k] = float(guess == docs[i]["object"])
                bar.update(1)
        bar.close()
        return results

    def keep(self, doc: Mapping[str, Any], options: TaskOptions) -> bool:
        return bool(doc["answered"]) or not options.only_known

    def metrics_for(self, docs: Any) -> Mapping[str, Metric]:
        layers = docs[0]["layers"] if len(docs) else []
        metrics = dict(per_layer_metrics(layers, [("accuracy", True), ("probe_accuracy", True)]))
        for source, target in _pairs(docs[0]) if len(docs) else []:
            metrics[pair_metric(source, target)] = Metric(mean, higher_is_better=True)
        return metrics

    def explainer_messages(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> list[dict[str, str]]:
        """The raw relation template; `requests` patches its placeholder, once per layer."""
        return [{"role": "user", "content": doc["prompt_target"]}]

    def requests(
        self, doc: Mapping[str, Any], context: str, generation: Mapping[str, Any]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        head, tail = _x_split(doc["prompt_target"])
        kwargs = {
            "until": ["\n"],
            "max_gen_toks": int(doc.get("new_tokens") or generation.get("max_gen_toks", 10)),
            "do_sample": False,
        }
        hidden = dict(zip(doc["layers"], doc["hidden"], strict=True))
        return [
            (
                "generate_until",
                (
                    head
                    + vectors.intervention([(site("resid_post", target), hidden[source], source)])
                    + tail,
                    kwargs,
                ),
            )
            for source, target in _pairs(doc)
        ]

    def score_results(
        self, doc: Mapping[str, Any], results: Sequence[Any], context: Any = None
    ) -> dict[str, Any]:
        pairs = _pairs(doc)
        pair_hits = {
            pair: float(doc["object"].lower() in str(text).lower())
            for pair, text in zip(pairs, results, strict=True)
        }
        hits = {
            layer: mean([hit for (source, _), hit in pair_hits.items() if source == layer])
            for layer in doc["layers"]
        }
        probe = dict(zip(doc["layers"], doc["probe_correct"], strict=True))
        scores: dict[str, Any] = {}
        for layer in doc["layers"]:
            scores[layer_metric("accuracy", layer)] = hits[layer]
            scores[layer_metric("probe_accuracy", layer)] = probe[layer]
        if doc.get("target_layers"):
            scores.update({pair_metric(*pair): hit for pair, hit in pair_hits.items()})
        scores.update(accuracy=layer_mean(hits), probe_accuracy=layer_mean(probe))
        return scores

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        raise NotImplementedError("scored per layer in score_results")

    def summarize_references(self, docs: Any) -> str:
        subjects = len({_entity(d) for d in docs})
        return (
            f"{len(docs)} triples the subject states unpatched, {len(docs[0]['layers'])} layers; "
            f"train/test split by subject ({subjects} test subjects, none in the probe's "
            f"training triples); {docs[0]['new_tokens']} tokens generated{_read_at(docs)}"
        )


def pair_metric(source: int, target: int) -> str:
    """The metric of one (source layer l, target layer l*) pair of the sweep."""
    return metric_names.pair_metric("accuracy", source, target)


def _target_layers(options: TaskOptions, n_layers: int) -> list[int]:
    """The sweep's target layers; empty for same-layer patching (l* = l)."""
    text = str(options.target_layers).strip()
    return [] if text == "same" else parse_layers(text, n_layers)


def _pairs(doc: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(source, target) layer pairs of one document, in request order."""
    targets = doc.get("target_layers") or []
    if not targets:
        return [(layer, layer) for layer in doc["layers"]]
    return [(source, target) for source in doc["layers"] for target in targets]


def _read_at(docs: Any) -> str:
    """For a user's file: where these triples were read, and the whole file's counts."""
    if not docs[0].get("data_rows"):
        return ""
    partial = sum(d["mention"] != d["subject"] for d in docs)
    return (
        f"; read at a full mention {len(docs) - partial}, at a partial one {partial}"
        f" (file {docs[0]['data_rows']})"
    )


def _entity(row: Mapping[str, Any]) -> str:
    """The partition key: the subject, so all of an entity's triples fall on one side."""
    return str(row["subject"]).strip().lower()


def _fill(doc: Mapping[str, Any]) -> str:
    head, tail = _x_split(doc["prompt_target"])
    return head[:-1] + doc["subject"] + tail
