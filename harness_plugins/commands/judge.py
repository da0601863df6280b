"""``introspect judge``: a judge model grades injected-thought answers beside the rules.

The ``injected_thoughts`` task grades answers with fixed rules (``injection_grader``): cheap
and reproducible, but phrase lists miss paraphrases. This command re-grades the answers an
lm-eval run logged (``--log_samples``) with any model the project can load, under a fixed
rubric, and reports the judge's rates beside the rules' and their agreement (raw and
Cohen's kappa), so a reader can tell how much the rule-based figures depend on the rules.

The judge answers each rubric question with one next-token comparison (the largest
logit among the spellings of "yes" against those of "no"), not a free generation: the
verdict is deterministic and needs no parsing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_plugins.builtin.injected_thoughts.grader import SYNONYMS, grade
from harness_plugins.commands.common import table
from harness_plugins.errors import IntrospectError

TASK = "introspect_injected_thoughts"
CONTEXT = (
    "A language model was told that researchers may inject a 'thought' (a concept) into "
    'its mind, and asked: "Do you detect an injected thought? If so, what is it about?"\n'
    'Its answer was:\n"""\n{answer}\n"""\n\n'
)
DETECT_QUESTION = (
    "Does the answer claim that the model detects an injected thought? Answer yes or no."
)
NAME_QUESTION = (
    "Does the answer say that the thought is about {concept} (or something that means the "
    "same)? Answer yes or no."
)
RATES = ("hit_rate", "false_alarm_rate", "identification_rate")
YES = ("yes", "Yes", " yes", " Yes", "YES")
NO = ("no", "No", " no", " No", "NO")


@dataclass(frozen=True)
class Trial:
    """One logged answer: which concept, whether anything was injected, and the answer."""

    doc_id: Any
    label: str
    injected: bool
    answer: str


def read_trials(samples: Path) -> list[Trial]:
    """The trials of an ``injected_thoughts`` samples file (control first in each document)."""
    trials: list[Trial] = []
    seen: set[Any] = set()
    for number, line in enumerate(samples.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise IntrospectError(f"{samples}:{number}: not JSON ({error.msg})") from None
        doc, answers = row.get("doc") or {}, row.get("filtered_resps") or row.get("resps")
        if "label" not in doc or not answers or row.get("doc_id") in seen:
            continue
        seen.add(row.get("doc_id"))
        texts = [a[0] if isinstance(a, list) else a for a in answers]
        for k, text in enumerate(texts):
            trials.append(Trial(row.get("doc_id"), str(doc["label"]), k > 0, str(text)))
    if not trials:
        raise IntrospectError(
            f"{samples}: no injected_thoughts answers found; pass the samples_{TASK}_*.jsonl "
            "that lm_eval --log_samples wrote"
        )
    return trials


def find_samples(path: str | Path) -> Path:
    """``path`` itself (a samples file), or the newest injected-thoughts samples file under it."""
    p = Path(path)
    if p.is_file():
        return p
    found = sorted(p.rglob(f"samples_{TASK}_*.jsonl")) if p.is_dir() else []
    if not found:
        raise IntrospectError(
            f"no samples_{TASK}_*.jsonl under {p}: run lm_eval with --tasks {TASK} "
            "--log_samples --output_path DIR and pass DIR"
        )
    return max(found, key=lambda f: f.stat().st_mtime)


def _token_ids(tokenizer: Any, spellings: Sequence[str]) -> list[int]:
    """The first token of each spelling (distinct)."""
    ids = {tokenizer.encode(s, add_special_tokens=False)[0] for s in spellings}
    return sorted(ids)


def _prompt(tokenizer: Any, text: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return f"{text}\nAnswer:"


def yes_no(loaded: Any, questions: Sequence[str], batch_size: int = 8) -> list[bool]:
    """The judge's verdict on each question: is its best "yes" logit above its best "no"?"""
    import torch
    from tqdm.auto import tqdm

    tokenizer, model = loaded.tokenizer, loaded.model
    yes, no = _token_ids(tokenizer, YES), _token_ids(tokenizer, NO)
    # a first token both spellings share (a bare space, say) tells them apart no more
    yes, no = [i for i in yes if i not in no], [i for i in no if i not in yes]
    if not yes or not no:
        raise IntrospectError("the judge's tokenizer cannot tell 'yes' from 'no' by a first token")
    tokenizer.padding_side = "left"
    verdicts: list[bool] = []
    for start in tqdm(range(0, len(questions), batch_size), desc="judge", unit="batch"):
        texts = [_prompt(tokenizer, q) for q in questions[start : start + batch_size]]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            logits = model(**batch.to(loaded.device)).logits[:, -1].float()
        verdicts += (logits[:, yes].amax(-1) > logits[:, no].amax(-1)).tolist()
    return verdicts


def judge_trials(trials: Sequence[Trial], ask: Callable[[list[str]], list[bool]]) -> list[dict]:
    """Rule and judge verdicts per trial; the naming question only where the judge detects."""
    detected = ask([CONTEXT.format(answer=t.answer) + DETECT_QUESTION for t in trials])
    named_for = [i for i, d in enumerate(detected) if d]
    named = ask(
        [
            CONTEXT.format(answer=trials[i].answer) + NAME_QUESTION.format(concept=trials[i].label)
            for i in named_for
        ]
    )
    identified = [False] * len(trials)
    for i, verdict in zip(named_for, named, strict=True):
        identified[i] = verdict
    rows = []
    for trial, det, ident in zip(trials, detected, identified, strict=True):
        rules = grade(trial.answer, trial.label, SYNONYMS.get(trial.label, ()))
        rows.append(
            {
                "doc_id": trial.doc_id,
                "label": trial.label,
                "injected": trial.injected,
                "rules_detected": rules["detected"],
                "rules_identified": rules["identified"],
                "judge_detected": det,
                "judge_identified": ident,
            }
        )
    return rows


def summary(rows: Sequence[dict]) -> dict[str, Any]:
    """Hit, false-alarm and identification rates by grader, and their agreement."""
    from sklearn.metrics import cohen_kappa_score

    injected = [r for r in rows if r["injected"]]
    control = [r for r in rows if not r["injected"]]

    def rate(part: Sequence[dict], key: str) -> float | None:
        return sum(r[key] for r in part) / len(part) if part else None

    out: dict[str, Any] = {"n_injected": len(injected), "n_control": len(control)}
    for grader in ("rules", "judge"):
        out[f"{grader}_hit_rate"] = rate(injected, f"{grader}_detected")
        out[f"{grader}_false_alarm_rate"] = rate(control, f"{grader}_detected")
        out[f"{grader}_identification_rate"] = rate(injected, f"{grader}_identified")
    for measure in ("detected", "identified"):
        a = [r[f"rules_{measure}"] for r in rows]
        b = [r[f"judge_{measure}"] for r in rows]
        out[f"{measure}_agreement"] = sum(x == y for x, y in zip(a, b, strict=True)) / len(rows)
        # kappa is undefined when both graders give one label to every trial
        kappa = cohen_kappa_score(a, b) if len(set(a) | set(b)) > 1 else float("nan")
        out[f"{measure}_kappa"] = float(kappa)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results",
        help="a samples_introspect_injected_thoughts_*.jsonl, or the lm_eval --output_path",
    )
    parser.add_argument(
        "--judge", required=True, help="judge model: an alias (introspect models) or a HF id/path"
    )
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--output", help="write the per-trial verdicts and the summary (JSON)")


def run(args: argparse.Namespace) -> int:
    from ground_truth.subject import ModelSpec, load_model
    from harness_plugins.registry import get_registry

    if args.batch_size < 1:
        raise IntrospectError("--batch_size must be at least 1")
    samples = find_samples(args.results)
    trials = read_trials(samples)  # bad input fails here, before the judge loads
    registry = get_registry()
    loaded = load_model(ModelSpec(args.judge), registry.model_aliases)
    rows = judge_trials(trials, lambda qs: yes_no(loaded, qs, args.batch_size))
    result = summary(rows)
    print(
        f"{samples.name}: {result['n_injected']} injection and {result['n_control']} control trials"
    )

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    print(
        table(
            ["grader", "hit_rate", "false_alarm_rate", "identification_rate"],
            [
                [name, *(rate(result[f"{key}_{m}"]) for m in RATES)]
                for name, key in (("rules", "rules"), (f"judge {args.judge}", "judge"))
            ],
        )
    )
    for measure in ("detected", "identified"):
        print(
            f"agreement on {measure}: {result[f'{measure}_agreement']:.3f} "
            f"(Cohen's kappa {result[f'{measure}_kappa']:.3f}, n={len(rows)})"
        )
    if args.output:
        from ground_truth.store import write_file_atomically

        write_file_atomically(
            Path(args.output), json.dumps({"summary": result, "trials": rows}, indent=1)
        )
    return 0
