"""Is a held-out concept's label linearly readable from its direction? (a diagnostic)

    python examples/positive_control/linear_probe.py --bank results/positive_control/train_bank.json

A ridge map from each train-partition concept's direction (the features type's vector, at
the middle layer) to the mean input embedding of its label's tokens, the ridge picked by
5-fold cross-validation on the train concepts only; then, for each test-partition concept
of the built-in bank, the label among 5 candidates (the true one and 4 other built-in
labels) whose embedding is nearest the prediction. This is not an explainer (no model
describes anything); it bounds what a linear read-out of the same vectors can name, which
is what the answer-probe warm start (`--projection_init answer_probe`) starts from.
"""

from __future__ import annotations

import argparse
import json
import math
import random

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", required=True, help="the training bank (make_bank.py)")
    parser.add_argument("--subject", default="smollm2-135m-instruct")
    args = parser.parse_args()

    from ground_truth.backends.hf import HFBackend
    from ground_truth.least_squares import solve_affine
    from ground_truth.subject import ModelSpec, load_model
    from harness_plugins.banks.concepts import builtin_concepts
    from harness_plugins.builtin.features.sources import ConceptDirections
    from harness_plugins.partition import partition_of
    from harness_plugins.registry import get_registry

    model = load_model(ModelSpec(args.subject), get_registry().model_aliases)
    backend = HFBackend(model, batch_size=16, progress=False)
    options = {"concepts": args.bank, "layer": -1, "seed": 0, "exemplars": 4}
    features = ConceptDirections().build(model, backend, options, wanted=[])
    table = model.model.get_input_embeddings().weight.detach().float()

    def embed(label: str) -> torch.Tensor:
        return table[model.tokenizer(" " + label, add_special_tokens=False)["input_ids"]].mean(0)

    builtin = [c.name for c in builtin_concepts()]
    train = [f for f in features.values() if partition_of(f.feature_id, 0.2) == "train"]
    test = [
        features[f"concept:{n}"] for n in builtin if partition_of(f"concept:{n}", 0.2) == "test"
    ]

    def accuracy(weight, bias, items, labels, seed) -> float:
        hits = 0
        for feature in items:
            rng = random.Random(f"{seed}{feature.feature_id}")
            others = [label for label in labels if label != feature.label]
            candidates = [feature.label, *rng.sample(others, 4)]
            predicted = torch.tensor(feature.vector) @ weight + bias
            similarity = torch.stack(
                [torch.cosine_similarity(predicted, embed(c), 0) for c in candidates]
            )
            hits += int(similarity.argmax() == 0)
        return hits / len(items)

    def fit(items, ridge):
        x = torch.tensor([f.vector for f in items])
        return solve_affine(x, torch.stack([embed(f.label) for f in items]), ridge)

    order = list(range(len(train)))
    random.Random(0).shuffle(order)
    folds = [order[k::5] for k in range(5)]
    train_labels = [f.label for f in train]
    scores = {}
    for ridge in (1e-3, 1e-2, 1e-1, 1.0):
        fold_scores = []
        for fold in folds:
            held = set(fold)
            weight, bias = fit([train[i] for i in order if i not in held], ridge)
            fold_scores.append(accuracy(weight, bias, [train[i] for i in fold], train_labels, 1))
        scores[ridge] = sum(fold_scores) / len(fold_scores)
    ridge = max(scores, key=scores.get)
    weight, bias = fit(train, ridge)
    value = accuracy(weight, bias, test, builtin, 0)
    stderr = math.sqrt(value * (1 - value) / (len(test) - 1))
    print(
        json.dumps(
            {
                "train_concepts": len(train),
                "cv_accuracy_by_ridge": scores,
                "ridge": ridge,
                "test_concepts": len(test),
                "test_mc_accuracy": round(value, 4),
                "stderr": round(stderr, 4),
                "chance": 0.2,
            }
        )
    )


if __name__ == "__main__":
    main()
