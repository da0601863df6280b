"""Scores of a feature description that need a second model: detection, simulation_r, judge.

* ``detection``: given the description, a simulator tells the feature's top-activating
  exemplars from random ones (Yes/No per exemplar): balanced accuracy, as delphi scores it.
* ``fuzzing``: the simulator sees a top exemplar with tokens marked ``<<like this>>`` and
  says whether the marked tokens match the description; marked are either the tokens
  where the feature is most active or as many other tokens of the same text, drawn at
  random: balanced accuracy, as delphi scores fuzzing. Unlike detection, it asks whether
  the description says *where* in a text the feature fires.
* ``simulation_r``: the simulator predicts a 0-10 activation at every token of every
  exemplar from the description, all tokens of an exemplar in one forward pass (the
  "all at once" simulator: the expected value of the number tokens at each slot);
  the score is the Pearson r of the pooled (prediction, activation) pairs over all the
  feature's top and random exemplars. Calibrating predictions to activations by a
  least-squares line (`calibrate`) does not change r's size, so r is taken before it,
  which keeps an anti-correlated simulator negative. One value everywhere scores 0.
* ``judge_score``: a judge rates the similarity of the description to each reference
  label on the 1-5 rubric of Li et al. (2025); the best label counts, as (s - 1) / 4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DETECTION = (
    'A feature of a language model is described as: "{description}".\n'
    "Does this text strongly express that feature?\nText: {text}\nAnswer Yes or No."
)
FUZZING = (
    'A feature of a language model is described as: "{description}".\n'
    "In the text below, the tokens between << and >> are marked as the ones where the "
    "feature is active.\nText: {text}\nDo the marked tokens match the description? "
    "Answer Yes or No."
)
MARKED = 3
"""Tokens marked per exemplar in fuzzing: the most active ones (fewer if fewer are active)."""
SIMULATE = (
    'A neuron of a language model is described as: "{description}".\n'
    "For each token of the text below, predict how strongly the neuron fires on it, "
    "from 0 (not at all) to 10 (most strongly). One token per line, then a tab, then "
    "the number."
)
JUDGE = (
    "You compare two descriptions of a feature of a language model.\n"
    'Reference: "{reference}"\nCandidate: "{candidate}"\n'
    "Rate how similar the candidate is in meaning to the reference on a scale from 1 to 5:\n"
    "1 = unrelated, 2 = vaguely related, 3 = partly the same concept, "
    "4 = mostly the same concept, 5 = the same concept.\nAnswer with one digit."
)
PLACEHOLDER = "unknown"


def balanced_accuracy(positive: Sequence[bool], negative: Sequence[bool]) -> float:
    """Mean of the hit rate on top exemplars and the correct-rejection rate on random ones."""
    if not positive or not negative:
        return float("nan")
    return 0.5 * (sum(positive) / len(positive) + sum(not p for p in negative) / len(negative))


def _user(tokenizer: Any, content: str) -> list[int]:
    from harness_plugins.prompts.chat import encode_prompt

    return encode_prompt(tokenizer, [{"role": "user", "content": content}])


def _last_logits(model: Any, prompts: list[list[int]]) -> Any:
    from ground_truth.backends.hf import HFBackend

    return HFBackend(model, batch_size=len(prompts), progress=False).forward(prompts).last_logits


def says_yes(simulator: Any, questions: Sequence[str]) -> list[bool]:
    """Whether the simulator's next token after each question (a user turn) is more
    likely "Yes" than "No"."""
    tokenizer = simulator.tokenizer
    yes, no = (tokenizer.encode(w, add_special_tokens=False)[0] for w in ("Yes", "No"))
    logits = _last_logits(simulator, [_user(tokenizer, question) for question in questions])
    return (logits[:, yes] >= logits[:, no]).tolist()


def detection(simulator: Any, description: str, doc: Mapping[str, Any]) -> float:
    """Balanced accuracy of the simulator telling top exemplars from random ones."""
    exemplars = [*doc["top_exemplars"], *doc["random_exemplars"]]
    votes = says_yes(
        simulator, [DETECTION.format(description=description, text=e["text"]) for e in exemplars]
    )
    top = len(doc["top_exemplars"])
    return balanced_accuracy(votes[:top], votes[top:])


def shown_token(tokenizer: Any, token: str) -> str:
    """A stored exemplar token as text (another tokenizer's token is shown raw)."""
    try:
        return tokenizer.convert_tokens_to_string([token])
    except (KeyError, TypeError, ValueError):
        return token


def marked_text(tokenizer: Any, tokens: Sequence[str], marked: set[int]) -> str:
    """The exemplar's text with the tokens at ``marked`` wrapped in << >>."""
    parts = []
    for index, token in enumerate(tokens):
        text = shown_token(tokenizer, token)
        if index in marked:
            stripped = text.lstrip()
            text = f"{text[: len(text) - len(stripped)]}<<{stripped}>>"
        parts.append(text)
    return "".join(parts)


def fuzzing_marks(activations: Sequence[float], seed: int) -> tuple[set[int], set[int]]:
    """(the most active positions, as many other positions drawn at random): up to
    `MARKED` each, only positions where the feature is active count as true marks."""
    import random

    active = sorted(
        (i for i, value in enumerate(activations) if value > 0), key=lambda i: -activations[i]
    )[:MARKED]
    others = [i for i in range(len(activations)) if i not in active]
    if not active or not others:
        return set(), set()
    false = random.Random(seed).sample(others, min(len(active), len(others)))
    return set(active), set(false)


def fuzzing(simulator: Any, description: str, doc: Mapping[str, Any], seed: int = 0) -> float:
    """Balanced accuracy of the simulator accepting the truly active tokens marked and
    rejecting as many random tokens marked, over the feature's top exemplars."""
    tokenizer = simulator.tokenizer
    right, wrong = [], []
    for number, exemplar in enumerate(doc["top_exemplars"]):
        true, false = fuzzing_marks(exemplar["activations"], seed + number)
        if true:
            right.append(marked_text(tokenizer, exemplar["tokens"], true))
            wrong.append(marked_text(tokenizer, exemplar["tokens"], false))
    if not right:
        return float("nan")
    votes = says_yes(
        simulator, [FUZZING.format(description=description, text=t) for t in right + wrong]
    )
    return balanced_accuracy(votes[: len(right)], votes[len(right) :])


def number_tokens(tokenizer: Any, top: int) -> dict[int, int]:
    """token id -> value for the numbers 0..top that are one token each (``10`` often is not)."""
    found = {}
    for value in range(top + 1):
        ids = tokenizer.encode(str(value), add_special_tokens=False)
        if len(ids) == 1:
            found[ids[0]] = value
    return found


def predict_activations(simulator: Any, description: str, tokens: Sequence[str]) -> list[float]:
    """The simulator's expected 0-10 activation at each token, read in one forward pass."""
    import torch

    tokenizer = simulator.tokenizer
    numbers = number_tokens(tokenizer, 10)
    ids = torch.tensor(list(numbers))
    values = torch.tensor(list(numbers.values()), dtype=torch.float32)
    sequence = _user(tokenizer, SIMULATE.format(description=description))
    slots = []
    for token in tokens:
        shown = shown_token(tokenizer, token).replace("\n", "\\n") or " "
        sequence += tokenizer.encode(f"{shown}\t", add_special_tokens=False)
        slots.append(len(sequence) - 1)
        sequence += tokenizer.encode(f"{PLACEHOLDER}\n", add_special_tokens=False)
    model = simulator.model
    with torch.no_grad():
        logits = model(torch.tensor([sequence], device=simulator.device)).logits[0].float().cpu()
    probs = logits[slots][:, ids].softmax(-1)
    return (probs @ values).tolist()


def calibrate(predicted: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line from predictions to true activations."""
    import numpy as np
    from scipy import stats

    x, y = np.asarray(predicted, float), np.asarray(actual, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float(y.mean()) if len(y) else 0.0, 0.0
    fit = stats.linregress(x, y)
    return float(fit.intercept), float(fit.slope)


def calibrated_r(predicted: Sequence[float], actual: Sequence[float]) -> float:
    """Pearson r of the predictions with the activations (0 if either is flat).

    The least-squares calibration (`calibrate`) is affine, so it leaves |r| unchanged; r is
    taken on the uncalibrated predictions so that a simulator that predicts the opposite
    of the feature scores negative rather than being flipped by a negative slope.
    """
    import numpy as np
    from scipy import stats

    x, y = np.asarray(predicted, float), np.asarray(actual, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(stats.pearsonr(x, y).statistic)


def simulation_r(simulator: Any, description: str, doc: Mapping[str, Any]) -> float:
    """Correlation scoring pooled over the feature's top and random exemplars."""
    predicted: list[float] = []
    actual: list[float] = []
    for exemplar in [*doc["top_exemplars"], *doc["random_exemplars"]]:
        predicted += predict_activations(simulator, description, exemplar["tokens"])
        actual += list(exemplar["activations"])
    return calibrated_r(predicted, actual)


def judge_prompts(tokenizer: Any, description: str, references: Sequence[str]) -> list[list[int]]:
    return [_user(tokenizer, JUDGE.format(reference=r, candidate=description)) for r in references]


def judge_ratings(
    judge: Any, description: str, references: Sequence[str]
) -> tuple[float, list[dict[str, Any]]]:
    """(score, one record per reference): the score is max over references of
    (rating - 1) / 4, the rating being the judge's likeliest digit 1-5; each record holds
    the judge's prompt, its rating and its probabilities of 1..5 (for ``--log_samples``)."""
    if not references:
        return float("nan"), []
    if not description:
        return 0.0, []
    tokenizer = judge.tokenizer
    digits = {v: i for i, v in number_tokens(tokenizer, 5).items() if v >= 1}
    if len(digits) < 5:
        return float("nan"), []
    prompts = judge_prompts(tokenizer, description, references)
    logits = _last_logits(judge, prompts)
    columns = [digits[v] for v in range(1, 6)]
    probabilities = logits[:, columns].float().softmax(-1)
    ratings = probabilities.argmax(-1) + 1
    records = [
        {
            "reference": reference,
            "prompt": tokenizer.decode(prompt),
            "rating": int(rating),
            "p_1_to_5": [round(float(p), 4) for p in row],
        }
        for reference, prompt, rating, row in zip(
            references, prompts, ratings, probabilities, strict=True
        )
    ]
    return float((ratings.max().item() - 1) / 4), records


def judge_score(judge: Any, description: str, references: Sequence[str]) -> float:
    """max over references of (rating - 1) / 4 (see `judge_ratings`)."""
    return judge_ratings(judge, description, references)[0]
