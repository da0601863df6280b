"""A data-rich training concept bank for the positive control (issue 24, item 4).

The built-in bank has 99 train-partition concepts, one direction each: too few for an
explainer to learn a mapping that generalises to unseen concepts (see README.md). This
script writes a larger bank: the built-in concepts unchanged (so every built-in direction,
the 23 test concepts' included, is exactly what the evaluation reads) plus the concepts of
``train_words.txt``, each with sentences the subject itself writes (greedy, six prompts).
Training reads only the bank's train partition (the partition is a hash of the concept id,
so a built-in test concept stays test); ``EXCLUDED`` keeps the test concepts' synonyms out.

    python examples/positive_control/make_bank.py --subject smollm2-135m-instruct \
        --out results/positive_control/train_bank.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPTS = (
    "Write one sentence about {w}.",
    "Write one sentence describing a scene with {w}.",
    "Write one sentence a child might say about {w}.",
    "Write one interesting fact about {w} in a single sentence.",
    "Write one sentence from a story about {w}.",
    "Write one sentence explaining why people care about {w}.",
)
# the 23 test-partition concepts of the built-in bank and their close synonyms: none may be a
# training concept, or the test would measure recall of a trained label
EXCLUDED = {
    *"bicycles bike bikes cycling cars car automobiles trucks taxis buses cleaning laundry soap"
    " vacuum cooking kitchen chefs baking recipes dance dancing ballet disgust electricity"
    " batteries voltage wires lightning fear terror horror panic friendship friends fruit"
    " apples bananas oranges grapes berries strawberries ghosts spirits haunting haircuts"
    " barbers hair horses ponies riding internet web websites email online journalism news"
    " newspapers reporters magazines music songs concerts melody piano violin drums jazz"
    " orchestra opera ocean sea seas waves beaches shore politics elections voting government"
    " presidents rain umbrellas showers religion church churches prayer god gods temples"
    " priests royalty kings queens princes princesses crowns thunderstorms thunder storms".split(),
}


def read_words(path: Path) -> list[str]:
    words = [
        w.strip() for w in path.read_text().splitlines() if w.strip() and not w.startswith("#")
    ]
    bad = sorted({w for w in words if set(w.split()) & EXCLUDED})
    if bad:
        raise SystemExit(f"make_bank: {path} names test concepts or their synonyms: {bad}")
    return list(dict.fromkeys(words))


def first_sentence(text: str) -> str | None:
    text = text.strip().strip('"').strip()
    match = re.match(r"(.+?[.!?])(\s|$)", text, re.S)
    sentence = (match.group(1) if match else "").replace("\n", " ").strip().strip('"')
    return sentence if 4 <= len(sentence.split()) <= 40 else None


def generate(model, tokenizer, prompts: list[str], batch_size: int = 48) -> list[str]:
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="sentences"):
        chats = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            for p in prompts[start : start + batch_size]
        ]
        batch = tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(
                **batch, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        out += tokenizer.batch_decode(
            ids[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subject", default="smollm2-135m-instruct")
    parser.add_argument("--words", type=Path, default=HERE / "train_words.txt")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from ground_truth.subject import ModelSpec, load_model
    from harness_plugins.banks.concepts import MIN_SENTENCES, builtin_concepts, neutral_sentences
    from harness_plugins.registry import get_registry

    builtin = builtin_concepts()
    taken = {c.name for c in builtin}
    words = [w for w in read_words(args.words) if w not in taken]
    loaded = load_model(ModelSpec(args.subject), get_registry().model_aliases)
    prompts = [p.format(w=w) for w in words for p in PROMPTS]
    texts = generate(loaded.model, loaded.tokenizer, prompts)
    concepts = [{"name": c.name, "sentences": list(c.sentences)} for c in builtin]
    seen = {sentence for concept in concepts for sentence in concept["sentences"]}
    seen |= set(neutral_sentences())
    dropped = []
    for k, word in enumerate(words):
        found = [first_sentence(t) for t in texts[k * len(PROMPTS) : (k + 1) * len(PROMPTS)]]
        # distinct across the whole bank: the loader refuses a sentence two concepts share
        sentences = [s for s in dict.fromkeys(s for s in found if s) if s not in seen]
        if len(sentences) < MIN_SENTENCES:
            dropped.append(word)
            continue
        seen |= set(sentences)
        concepts.append({"name": word, "sentences": sentences})
    bank = {"concepts": concepts, "neutral": list(neutral_sentences())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    partial.write_text(json.dumps(bank, indent=1))
    partial.replace(args.out)
    print(
        f"{len(concepts)} concepts ({len(builtin)} built-in, {len(concepts) - len(builtin)} "
        f"written by {args.subject}; dropped {len(dropped)}: {dropped[:10]}) -> {args.out}"
    )


if __name__ == "__main__":
    main()
