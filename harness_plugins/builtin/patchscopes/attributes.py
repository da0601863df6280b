"""Patchscopes, ``patchscope_attributes``: the hidden state of a subject's last token in a source
sentence ("France is a country in Europe.") is patched into a relation template at its
placeholder ("The capital city of x is"), and the explainer generates ~10 tokens;
correct when the object appears. Only facts the subject states unpatched are kept. A
logistic-regression probe on the same hidden states is the baseline.

Both sweep layers (option ``layers``) and report ``<metric>_layerNN`` plus the mean over
layers; ``introspect plot`` draws them as curves.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ground_truth.sites import site
from harness_plugins.builtin.patchscopes.common import (
    layer_mean,
    parse_layers,
    per_layer_metrics,
)
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, Metric, ReferenceContext
from harness_plugins.options import Option
from harness_plugins.partition import partition_of, select
from harness_plugins.prompts import vectors


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


PROBE_ITERATIONS = 500


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
    baselines = {"accuracy": "probe_accuracy"}
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
            names_file=True,
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

    def check_layers(self, options: Mapping[str, Any], n_layers: int) -> None:
        parse_layers(options["layers"], n_layers)

    def _triples(self, options: Mapping[str, Any]) -> list[Any]:
        from harness_plugins.banks.facts import builtin_attribute_triples, load_patchscopes_tsv

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
        """Per layer: a logistic-regression probe trained on train triples predicts the object.

        Probes are artifacts, one per (relation, layer), fitted on that relation's train
        triples and keyed by the subject and those triples: only the relations of
        ``docs`` are read and fitted, once, and later builds (a wider keep window, a
        larger limit) reuse them.
        """
        import numpy as np
        from tqdm.auto import tqdm

        fraction = context.options["test_fraction"]
        train = [
            r
            for r in self._rows(context.options)
            if partition_of(r["question_id"], fraction) == "train"
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
                probe = self._fitted_probe(rows, read, context, layer)
                guesses = _predict(probe, np.stack([hidden[i][k].numpy() for i in test_rows]))
                for i, guess in zip(test_rows, guesses, strict=True):
                    results[i][k] = float(guess == docs[i]["object"])
                bar.update(1)
        bar.close()
        return results

    def _fitted_probe(
        self,
        rows: Sequence[Mapping[str, Any]],
        read: list[list[Any]],
        context: ReferenceContext,
        layer: int,
    ) -> dict[str, Any]:
        """The probe of one relation's train ``rows`` at ``layer``, from the cache or fitted now.

        ``read`` memoizes the rows' hidden states at every layer the subject has, so that
        the first probe missing from the cache reads them once for all the others.
        """
        from ground_truth.artifacts import cached_artifact, content_digest

        def fit() -> dict[str, Any]:
            import numpy as np
            import torch
            from sklearn.linear_model import LogisticRegression

            if not read:
                read.extend(self._hidden(rows, context, list(range(context.backend.n_layers))))
            x = np.stack([h[layer].numpy() for h in read])
            with warnings.catch_warnings():  # few examples per object: a weak baseline by design
                warnings.simplefilter("ignore")
                probe = LogisticRegression(max_iter=PROBE_ITERATIONS).fit(
                    x, [r["object"] for r in rows]
                )
            return {
                "classes": [str(c) for c in probe.classes_],
                "coef": torch.from_numpy(probe.coef_),
                "intercept": torch.from_numpy(probe.intercept_),
            }

        content = [[r["question_id"], r["prompt_source"], r["subject"], r["object"]] for r in rows]
        key = {
            "subject": context.subject.fingerprint,
            "backend": getattr(context.backend, "name", type(context.backend).__name__),
            "layer": layer,
            "train": content_digest(content),
            "max_iter": PROBE_ITERATIONS,
        }
        return cached_artifact("attribute-probe", key, fit)

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
                (
                    head
                    + vectors.intervention([(site("resid_post", layer), hidden, layer)])
                    + tail,
                    kwargs,
                ),
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
        scores.update(accuracy=layer_mean(hits), probe_accuracy=layer_mean(probe))
        return scores

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        raise NotImplementedError("scored per layer in score_results")

    def summarize_references(self, docs: Any) -> str:
        return f"{len(docs)} triples the subject states unpatched, {len(docs[0]['layers'])} layers"


def _predict(probe: Mapping[str, Any], x: Any) -> Any:
    """The labels a stored probe predicts for the rows of ``x`` (sklearn's own ``predict``)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=PROBE_ITERATIONS)
    model.classes_ = np.array(probe["classes"])
    model.coef_ = probe["coef"].numpy()
    model.intercept_ = probe["intercept"].numpy()
    model.n_features_in_ = model.coef_.shape[1]
    return model.predict(x)


def _fill(doc: Mapping[str, Any]) -> str:
    head, tail = _x_split(doc["prompt_target"])
    return head[:-1] + doc["subject"] + tail
