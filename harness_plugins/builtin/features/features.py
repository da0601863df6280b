"""Explanation type ``features``: what does a direction in the subject's residual stream encode?

Li et al., 2025, feature descriptions (docs/methods.md). The explainer reads the feature's vector through
its input embedding (``--model introspect`` writes it at the ``<rep>`` slot) and describes
it. Scores: ``label_match`` (the description names the reference label),
``mc_accuracy`` (the label ranks first by loglikelihood among k candidates),
``judge_score`` (a judge rates the description against the reference labels, 1-5),
``detection`` (a simulator tells top-activating exemplars from random ones: balanced
accuracy), ``fuzzing`` (it tells the truly active tokens marked from random ones marked)
and ``simulation_r`` (the simulator predicts per-token activations: calibrated Pearson
r); the last three need no label (`harness_plugins.builtin.features.scoring`). Features
without reference labels (an SAE without a labels file) are scored by those three only.
Baselines as options: the nearest-neighbour label (``explainer: nearest_neighbour``) and
the untrained "What is the meaning of <rep>?" prompt (``prompt: meaning``) at any
``vector_scale``.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from harness_plugins.builtin.features.scoring import balanced_accuracy  # noqa: F401  (re-exported)
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, Metric, ReferenceContext, Scores, mean
from harness_plugins.options import NO_INTERNALS, Option
from harness_plugins.partition import partition_of, select
from harness_plugins.prompts import vectors
from harness_plugins.registry import get_registry, hookimpl
from harness_plugins.task_options import TaskOptions

DESCRIBE = (
    "At layer {layer}, {rep} encodes",
    "The vector {rep} from layer {layer} represents",
    "At layer {layer} of the model, {rep} stands for",
)
MEANING = "What is the meaning of {rep}?"


def _hash(*parts: Any) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def label_in(description: str, label: str) -> bool:
    """Every word of the label appears in the description (case, punctuation, plural -s ignored)."""
    wanted = [_stem(w) for w in _words(label)]
    present = {_stem(w) for w in _words(description)}
    return bool(wanted) and all(w in present for w in wanted)


SAE_OPTIONS = (
    Option(
        "sae",
        None,
        "sae source: folder of an SAE in sae-lens' layout (cfg.json, sae_weights.safetensors)",
        names_file=True,
    ),
    Option(
        "sae_features",
        None,
        "sae source: feature indices to explain, a list like [12, 40]; default: the sae_top_k "
        "most often firing",
        kind=list,
    ),
    Option(
        "sae_top_k",
        50,
        "sae source: how many of the most often firing features to explain",
        kind=int,
        minimum=1,
    ),
    Option(
        "sae_labels",
        None,
        "sae source: reference labels, Neuronpedia export (JSON list of {index, description}) "
        "or {index: description}; 'concepts': label features selective for one built-in "
        "concept by it; without labels only detection, fuzzing and simulation_r are scored",
        names_file=True,
    ),
    Option(
        "corpus",
        None,
        "sae source: exemplar corpus, a local .txt (a document a line) or .jsonl ({text}); "
        "default: the built-in sentences",
        names_file=True,
    ),
    Option("window", 32, "sae source: tokens per exemplar window", kind=int, minimum=2),
)


class Features(ExplanationType):
    name = "features"
    version = "3"  # 3: random exemplars drawn in pool order (backend-independent)
    description = "What does a direction in the subject's residual stream encode?"
    needs_vectors = True
    max_gen_tokens = 24
    stop_sequences = ("\n", ".")
    metrics = {
        "label_match": Metric(mean),
        "mc_accuracy": Metric(mean),
        "mc_chance": Metric(mean),
        "judge_score": Metric(mean),
        "detection": Metric(mean),
        "fuzzing": Metric(mean),
        "simulation_r": Metric(mean),
    }
    answer_metrics = ("label_match",)
    reference_columns = ("target", "label", "candidates")
    label_free = ("detection", "fuzzing", "simulation_r")
    """What features without reference labels are scored by."""
    # chance: one of k candidates; balanced accuracy of a coin; no correlation
    baselines = {
        "mc_accuracy": "mc_chance",
        "detection": 0.5,
        "fuzzing": 0.5,
        "simulation_r": 0.0,
    }
    options = (
        NO_INTERNALS,
        Option(
            "source", "concepts", "feature source: concepts, neurons, or one a plugin registers"
        ),
        Option("layer", -1, "subject block the features live in (-1: the middle one)", kind=int),
        Option(
            "concepts",
            None,
            "concept bank JSON ({concepts: [{name, sentences}], neutral: [...]}); default: built-in",
            names_file=True,
        ),
        Option(
            "neurons",
            200,
            "neurons source: how many of the most selective neurons to rank",
            kind=int,
            minimum=1,
        ),
        Option(
            "exemplars", 4, "top-activating and random exemplars per feature", kind=int, minimum=1
        ),
        Option(
            "candidates", 5, "labels ranked by loglikelihood for mc_accuracy", kind=int, minimum=2
        ),
        Option(
            "prompt",
            "describe",
            "explainer prompt: the research prompt with paraphrases (describe) or the "
            "untrained baseline 'What is the meaning of <rep>?' (meaning)",
            choices=("describe", "meaning"),
            affects_reference=False,
        ),
        Option(
            "vector_scale",
            1.0,
            "length of the injected vector, in units of the subject's median token-embedding norm",
            kind=float,
            minimum=0.0,
            affects_reference=False,
        ),
        Option(
            "explainer",
            "model",
            "who describes: the evaluated model, or the nearest-neighbour baseline (the label "
            "of the most similar train feature)",
            choices=("model", "nearest_neighbour"),
            affects_reference=False,
        ),
        Option(
            "simulation",
            True,
            "run the simulator's scoring (detection, fuzzing and simulation_r)",
            kind=bool,
            affects_reference=False,
        ),
        Option(
            "simulator",
            None,
            "model that simulates from descriptions; default: the explainer",
            affects_reference=False,
        ),
        Option(
            "judge",
            None,
            "model that rates descriptions against reference labels (judge_score): an alias, "
            "folder or Hub id; default: the explainer; 'none': no judge",
            affects_reference=False,
        ),
        *SAE_OPTIONS,
    )

    def validate(self, options: TaskOptions) -> None:
        self._source(options)
        if options.source == "sae":
            from harness_plugins.builtin.features.sae_source import check_options

            check_options(options)

    def metrics_for(self, docs: Any) -> Mapping[str, Metric]:
        """Only the label-free scores when no feature has a reference label."""
        if len(docs) and not any(docs["label"]):
            return {name: self.metrics[name] for name in self.label_free}
        return self.metrics

    def check_layers(self, options: TaskOptions, n_layers: int) -> None:
        from ground_truth.features import resolve_layer

        resolve_layer(options.layer, n_layers)

    def _source(self, options: TaskOptions) -> Any:
        sources = get_registry().feature_sources
        if options.source not in sources:
            raise IntrospectError(
                f"features: unknown feature source {options.source!r}; registered: {', '.join(sorted(sources))}"
            )
        return sources[options.source]

    # ------------------------------------------------------------------ questions

    def questions(self, options: TaskOptions) -> Any:
        import datasets

        ids = select(self._source(options).feature_ids(options), str, options, "features")
        return datasets.Dataset.from_dict({"question_id": ids})

    # ------------------------------------------------------------------ references

    def build_references(self, questions: Any, context: ReferenceContext) -> Any:
        import inspect

        import torch

        options = context.options
        source = self._source(options)
        wanted = list(questions["question_id"])
        if "wanted" in inspect.signature(source.build).parameters:
            features = source.build(context.subject, context.backend, options, wanted=wanted)
        else:
            features = source.build(context.subject, context.backend, options)
        missing = [fid for fid in wanted if fid not in features]
        if missing:
            raise IntrospectError(
                f"features: source {options.source!r} did not build {missing[:3]}"
            )
        train = [
            f for fid, f in features.items() if partition_of(fid, options.test_fraction) == "train"
        ]
        train_vectors = torch.tensor([f.vector for f in train]) if train else None
        labels = sorted({f.label for f in features.values() if f.label})
        embedding = context.subject.model.get_input_embeddings().weight.detach().float()
        norm = float(embedding.norm(dim=-1).median())
        rows = []
        for fid in questions["question_id"]:
            feature = features[fid]
            nn_label = ""
            if train_vectors is not None:
                similarity = train_vectors @ torch.tensor(feature.vector)
                for rank in torch.argsort(similarity, descending=True).tolist():
                    if train[rank].feature_id != fid:  # never the feature itself
                        nn_label = train[rank].label
                        break
            rng = random.Random(_hash("candidates", options.seed, fid))
            others = [label for label in labels if label != feature.label]
            candidates = (
                [feature.label, *rng.sample(others, min(options.candidates - 1, len(others)))]
                if feature.label
                else []
            )
            rng.shuffle(candidates)
            rows.append(
                {
                    "layer": feature.layer,
                    "vector": feature.vector,
                    "label": feature.label,
                    "labels": list(
                        feature.extra.get("labels") or [feature.label] * bool(feature.label)
                    ),
                    "candidates": candidates,
                    "answer_index": candidates.index(feature.label) if candidates else -1,
                    "nn_label": nn_label,
                    "top_exemplars": [asdict(e) for e in feature.top_exemplars],
                    "random_exemplars": [asdict(e) for e in feature.random_exemplars],
                    "embedding_norm": norm,
                    "target": feature.label,
                }
            )
        for column in rows[0] if rows else ():
            questions = questions.add_column(column, [row[column] for row in rows])
        return questions

    def summarize_references(self, docs: Any) -> str:
        if not any(docs["label"]):
            return (
                f"{len(docs)} features at layer {docs[0]['layer']} without reference labels: "
                f"only label-free scoring runs ({', '.join(self.label_free)})"
            )
        nn = sum(a == b for a, b in zip(docs["nn_label"], docs["label"], strict=True))
        return f"{len(docs)} features at layer {docs[0]['layer']}; nearest-neighbour label right for {nn}"

    # ------------------------------------------------------------------ explainer

    def explainer_messages(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> list[dict[str, str]]:
        rep = vectors.slot(
            doc["vector"],
            options.vector_scale * doc["embedding_norm"],
            layer=doc["layer"],
            control=doc["question_id"] if options.no_internals else None,
        )
        if options.prompt == "meaning":
            content = MEANING.format(rep=rep) + " Answer with a few words."
        else:
            sentence = DESCRIBE[_hash(doc["question_id"]) % len(DESCRIBE)].format(
                layer=doc["layer"], rep=rep
            )
            content = f'Complete the sentence with a few words naming a concept: "{sentence} ..."'
        return [{"role": "user", "content": content}]

    def requests(
        self, doc: Mapping[str, Any], context: str, generation: Mapping[str, Any]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        space = " " if context.rstrip().endswith(":") or not context.endswith(("\n", " ")) else ""
        ranking = [
            ("loglikelihood", (context, space + candidate)) for candidate in doc["candidates"]
        ]
        return [("generate_until", (context, dict(generation))), *ranking]

    def score_results(
        self, doc: Mapping[str, Any], results: Sequence[Any], context: Any = None
    ) -> dict[str, Any]:
        from harness_plugins.builtin.features import scoring as feature_scoring

        options = context.options if context is not None else None
        use_baseline = options is not None and options.explainer == "nearest_neighbour"
        description = doc["nn_label"] if use_baseline else str(results[0]).strip()
        scores = self.score(doc, description)
        if options is not None and options.simulation and description:
            simulator = context.simulator()
            scores["detection"] = feature_scoring.detection(simulator, description, doc)
            scores["fuzzing"] = feature_scoring.fuzzing(simulator, description, doc)
            scores["simulation_r"] = feature_scoring.simulation_r(simulator, description, doc)
        if not doc["label"]:
            return {name: scores[name] for name in self.label_free}
        if use_baseline:
            scores["mc_accuracy"] = float(doc["label"] == doc["nn_label"])
        else:
            ranking = [value[0] for value in results[1:]]
            scores["mc_accuracy"] = float(ranking.index(max(ranking)) == doc["answer_index"])
        judge = getattr(context, "judge", None)
        if judge is not None and str(options.judge or "").lower() != "none":
            score, ratings = feature_scoring.judge_ratings(judge(), description, doc["labels"])
            scores["judge_score"] = score
            return Scores(scores, records={"judge": ratings})
        return scores

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        nan = float("nan")
        if not doc["label"]:
            return {"detection": nan, "fuzzing": nan, "simulation_r": nan}
        return {
            "label_match": float(label_in(response, doc["label"])),
            "mc_accuracy": nan,
            "mc_chance": 1.0 / len(doc["candidates"]),
            "judge_score": nan,
            "detection": nan,
            "fuzzing": nan,
            "simulation_r": nan,
        }


@hookimpl
def introspect_register_explanation_types(register: Any) -> None:
    register(Features())
