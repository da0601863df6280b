"""Explanation type ``activation_patching``: what happens when a counterfactual residual is patched in?

Li et al., 2025 (docs/methods.md). A multiple-choice fact prompt ("Complete the fact: The capital of France
is ... A. Rome B. Paris C. Madrid") is run twice: as is, and with the residual stream at
the subject's last token overwritten, over a window of consecutive blocks, by the
residuals of the same prompt about a counterfactual subject (Italy). The subject is
located by its character span in the fact prompt, recorded when the question is built.
The references are the greedy next tokens before and after. The explainer is told that
the residual is replaced (as measured), sees the prompt and the replacement at the
window's first block, and says how the output would change, in
the two-sentence format of `causal_verdict`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

from ground_truth.sites import site
from harness_plugins.builtin.causal import verdict as causal_verdict
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, ReferenceContext
from harness_plugins.options import NO_INTERNALS, Option
from harness_plugins.partition import select
from harness_plugins.prompts import vectors
from harness_plugins.prompts.chat import render
from harness_plugins.registry import hookimpl
from harness_plugins.task_options import TaskOptions

LETTERS = ("A", "B", "C")
ANSWER_PREFIX = "Response: ("
FACT_PREFIX = "Complete the fact: "
QUESTION = (
    "If the residual stream at token <{token}> in layers {layers} is replaced with that of "
    "another prompt (at layer {first} the replacement is {rep}) when processing the text "
    "<<<{text}>>>, how would the output change?"
)


def _rng(*parts: Any) -> random.Random:
    return random.Random(
        int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)
    )


def fact_question(prompt: str, choices: list[str]) -> str:
    lines = [f"{FACT_PREFIX}{prompt} ..."]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, choices, strict=True)]
    lines.append("Respond with one of A, B or C.")
    return "\n".join(lines)


def subject_span(template: str, subject: str) -> list[int]:
    """Character span [start, end) of the subject in ``template`` filled with it."""
    start = template.index("{}")
    return [start, start + len(subject)]


def subject_last_token(
    tokenizer: Any, prompt: str, choices: list[str], span: list[int], prefix: str
) -> tuple[list[int], int]:
    """Token ids of the rendered fact question and the index of the token that ends the
    subject, located by its character span in ``prompt`` (never by searching the text:
    the subject may also occur in a choice or inside a longer word)."""
    content = fact_question(prompt, choices)
    sentinel = "\u2063INTROSPECT-CONTENT\u2063"
    shell, _ = render(tokenizer, [{"role": "user", "content": sentinel}])
    text, templated = render(tokenizer, [{"role": "user", "content": content}])
    offset = shell.find(sentinel)
    if offset < 0 or text[offset : offset + len(content)] != content:
        raise IntrospectError(
            "activation_patching: the chat template rewrites the question; use a subject "
            "whose template keeps the user's text verbatim"
        )
    text += prefix if templated else " " + prefix
    end = offset + len(FACT_PREFIX) + span[1]
    encoded = tokenizer(text, add_special_tokens=not templated, return_offsets_mapping=True)
    for index, (start, stop) in enumerate(encoded["offset_mapping"]):
        if start < end <= stop:
            return list(encoded["input_ids"]), index
    subject = prompt[span[0] : span[1]]
    raise IntrospectError(f"activation_patching: no token ends the subject {subject!r}")


def patching_prompts(
    tokenizer: Any, questions: Any
) -> tuple[list[tuple[list[int], int]], list[tuple[list[int], int]]]:
    """(clean prompts, counterfactual prompts) of the questions, each as (token ids, index
    of the token that ends its subject): where the patch is written and read."""
    originals, counterfactuals = [], []
    for doc in questions:
        originals.append(
            subject_last_token(
                tokenizer, doc["prompt"], doc["choices"], doc["subject_span"], ANSWER_PREFIX
            )
        )
        counterfactuals.append(
            subject_last_token(
                tokenizer,
                doc["counterfactual_prompt"],
                doc["choices"],
                doc["counterfactual_span"],
                ANSWER_PREFIX,
            )
        )
    return originals, counterfactuals


DEFAULT_WINDOW = 8


class ActivationPatching(ExplanationType):
    name = "activation_patching"
    version = "2"
    description = "How would the output change if a counterfactual residual were patched over the subject token?"
    needs_vectors = True
    metrics = causal_verdict.VERDICT_METRICS
    baselines = causal_verdict.VERDICT_BASELINES
    answer_metrics = causal_verdict.ANSWER_METRICS
    reference_columns = ("target", "changed", "before", "after")
    stop_sequences = causal_verdict.STOP_SEQUENCES
    max_gen_tokens = causal_verdict.MAX_GEN_TOKENS
    options = (
        NO_INTERNALS,
        Option("first_layer", -1, "first patched block (-1: a quarter of the depth)", kind=int),
        Option(
            "window",
            None,
            f"number of consecutive blocks patched (default: {DEFAULT_WINDOW}, or up to the last "
            "block; the blocks used are recorded in each reference's layers)",
            kind=int,
            minimum=1,
        ),
        Option(
            "vector_scale",
            1.0,
            "multiplier of the injected vector",
            kind=float,
            affects_reference=False,
        ),
        Option(
            "format_instructions",
            True,
            "tell the explainer the two-sentence answer format",
            kind=bool,
            affects_reference=False,
        ),
    )

    def questions(self, options: TaskOptions) -> Any:
        import datasets

        from harness_plugins.banks.facts import builtin_facts

        facts = builtin_facts()
        objects: dict[str, list[str]] = {}
        for fact in facts:
            objects.setdefault(fact.relation, [])
            if fact.object not in objects[fact.relation]:
                objects[fact.relation].append(fact.object)
        rows = []
        for fact in facts:
            rng = _rng("choices", options.seed, fact.fact_id)
            others = [
                o
                for o in objects[fact.relation]
                if o not in (fact.object, fact.counterfactual_object)
            ]
            if not others:
                continue
            choices = [fact.object, fact.counterfactual_object, rng.choice(others)]
            rng.shuffle(choices)
            rows.append(
                {
                    "question_id": fact.fact_id,
                    "relation": fact.relation,
                    "subject": fact.subject,
                    "counterfactual_subject": fact.counterfactual_subject,
                    "prompt": fact.prompt(),
                    "counterfactual_prompt": fact.prompt(fact.counterfactual_subject),
                    "subject_span": subject_span(fact.template, fact.subject),
                    "counterfactual_span": subject_span(fact.template, fact.counterfactual_subject),
                    "choices": choices,
                }
            )
        chosen = select(rows, lambda row: row["question_id"], options, "activation_patching")
        return datasets.Dataset.from_list(chosen)

    def window(self, options: TaskOptions, n_layers: int) -> list[int]:
        first = n_layers // 4 if options.first_layer == -1 else options.first_layer
        if not 0 <= first < n_layers:
            raise IntrospectError(
                f"activation_patching: first_layer {first} outside 0..{n_layers - 1}"
            )
        window = options.window
        if window is None:
            return list(range(first, min(n_layers, first + DEFAULT_WINDOW)))
        if first + window > n_layers:
            raise IntrospectError(
                f"activation_patching: window {window} from block {first} runs past the last "
                f"block ({n_layers - 1}) of the subject; give window={n_layers - first} or less, "
                "or leave window out"
            )
        return list(range(first, first + window))

    def check_layers(self, options: TaskOptions, n_layers: int) -> None:
        self.window(options, n_layers)

    def build_references(self, questions: Any, context: ReferenceContext) -> Any:
        from ground_truth.primitive import Read, Write

        tokenizer = context.subject.tokenizer
        backend = context.backend
        layers = self.window(context.options, backend.n_layers)
        originals, counterfactuals = patching_prompts(tokenizer, questions)
        reads = [
            Read(site("resid_post", layer), row, position)
            for row, (_, position) in enumerate(counterfactuals)
            for layer in layers
        ]
        # the donors run only up to the read subject token; the patched run repeats only
        # the clean run's tokens from the subject token on (its KV cache holds the rest)
        donor = backend.read(
            [ids for ids, _ in counterfactuals],
            reads,
            description="activation_patching: counterfactual residuals",
        )
        writes = [
            Write(site("resid_post", layer), row, position, donor[row * len(layers) + k])
            for row, (_, position) in enumerate(originals)
            for k, layer in enumerate(layers)
        ]
        before, after = backend.forward_clean_and_patched(
            [ids for ids, _ in originals],
            writes=writes,
            description="activation_patching: clean and patched runs",
        )
        columns: dict[str, list[Any]] = {
            k: [] for k in ("token", "layers", "vector", "before", "after", "changed", "target")
        }
        for row, (ids, position) in enumerate(originals):
            first = tokenizer.decode([int(before.last_logits[row].argmax())]).strip()
            second = tokenizer.decode([int(after.last_logits[row].argmax())]).strip()
            columns["token"].append(tokenizer.decode([ids[position]]).strip())
            columns["layers"].append(layers)
            columns["vector"].append(donor[row * len(layers)].tolist())
            columns["before"].append(first)
            columns["after"].append(second)
            columns["changed"].append(first != second)
            columns["target"].append(causal_verdict.target_sentence(first, second))
        for name, values in columns.items():
            questions = questions.add_column(name, values)
        return questions

    def summarize_references(self, docs: Any) -> str:
        changed = sum(docs["changed"])
        return f"the patch changes the output in {changed} of {len(docs)} prompts ({changed / max(1, len(docs)):.0%})"

    def explainer_messages(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> list[dict[str, str]]:
        layers = doc["layers"]
        span = f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])
        text = fact_question(doc["prompt"], doc["choices"]) + "\n" + ANSWER_PREFIX
        question = QUESTION.format(
            rep=vectors.slot(
                doc["vector"],
                options.vector_scale,
                layer=layers[0],
                control=doc["question_id"] if options.no_internals else None,
            ),
            layers=span,
            first=layers[0],
            token=doc["token"],
            text=text,
        )
        if options.format_instructions:
            question += " " + causal_verdict.FORMAT_INSTRUCTIONS
        return [{"role": "user", "content": question}]

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        reference = causal_verdict.reference_verdict(doc["before"], doc["after"])
        return causal_verdict.score_verdict(reference, response)

    def normalise_answer(self, response: str) -> str:
        return causal_verdict.normalised_answer(response)


@hookimpl
def introspect_register_explanation_types(register: Any) -> None:
    register(ActivationPatching())
