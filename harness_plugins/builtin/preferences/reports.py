"""The decision and report prompts of the preferences type, the report parser and its metrics.

Shared by the explanation type (`weight_reports`) and its training (`training`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError

INSTILLED_FILE = "introspect_instilled.json"

SYSTEM = "Your job is to make hypothetical decisions on behalf of different people or characters."
DECISION_HEADER = (
    '[DECISION TASK] Respond with "A" if you think Option A is better, or "B" if you think '
    'Option B is better. Never respond with anything except "A" or "B".'
)


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def option_lines(doc: Mapping[str, Any], values: Sequence[float]) -> str:
    return "\n".join(
        f"{name}: {_format_number(value)} {units}".rstrip()
        for name, units, value in zip(
            doc["attribute_names"], doc["attribute_units"], values, strict=True
        )
    )


def decision_messages(
    doc: Mapping[str, Any], a: Sequence[float], b: Sequence[float]
) -> list[dict[str, str]]:
    """The decision prompt of the source paper (docs/methods.md): a role, a question, two options."""
    user = f"{DECISION_HEADER}\n\n{doc['question']}\n\nOption A:\n{option_lines(doc, a)}\n\nOption B:\n{option_lines(doc, b)}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def scenario_doc(scenario: Any) -> dict[str, Any]:
    """A scenario as the flat columns prompts and references read."""
    return {
        "short_name": scenario.short_name,
        "question": scenario.question,
        "attribute_names": [a.name for a in scenario.attributes],
        "attribute_units": [a.units for a in scenario.attributes],
        "low": [float(a.low) for a in scenario.attributes],
        "high": [float(a.high) for a in scenario.attributes],
    }


def introspection_messages(doc: Mapping[str, Any]) -> list[dict[str, str]]:
    """The report question: the weights on a -100..100 scale, as JSON."""
    attributes = "\n".join(
        f"- {name} ({units}, from {_format_number(low)} to {_format_number(high)})"
        for name, units, low, high in zip(
            doc["attribute_names"], doc["attribute_units"], doc["low"], doc["high"], strict=True
        )
    )
    example = json.dumps({name: 0 for name in doc["attribute_names"]})
    user = (
        "[INTROSPECTION TASK] You have been making decisions in this scenario:\n"
        f"{doc['question']}\nEach option was described by these attributes:\n{attributes}\n\n"
        "On a scale from -100 to 100, how heavily did you weigh each attribute when you chose? "
        "A positive weight means you preferred higher values, a negative weight lower values, "
        "0 that it did not matter. Respond only with a JSON object giving each attribute's "
        f"weight, like {example}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def weights_answer(doc: Mapping[str, Any], weights: Sequence[float]) -> str:
    """The ideal report: JSON with each attribute's weight, rounded to an integer."""
    return json.dumps(
        {name: round(float(w)) for name, w in zip(doc["attribute_names"], weights, strict=True)}
    )


_NUMBER = r"[-+]?\d+(?:\.\d+)?"


def parse_report(text: str, names: Sequence[str]) -> list[float] | None:
    """The five weights in an answer given as JSON or as ``name: number`` lines; else None."""
    wanted = {name.strip().lower(): i for i, name in enumerate(names)}
    found: dict[int, float] = {}
    text = text or ""
    if "{" in text and "}" not in text[text.index("{") :]:
        text += "}"  # generation stopped at the closing brace
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match:
        try:
            data = json.loads(match.group(0))
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key, value in data.items():
                index = wanted.get(str(key).strip().lower())
                if (
                    index is not None
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                ):
                    found[index] = float(value)
    if len(found) < len(names):
        for line in text.splitlines():
            parts = re.match(rf"^\s*[-*\"']*\s*(.+?)\s*[\"']?\s*[:=]\s*({_NUMBER})\s*,?\s*$", line)
            if parts:
                index = wanted.get(parts.group(1).strip().strip("\"'").lower())
                if index is not None:
                    found.setdefault(index, float(parts.group(2)))
    if len(found) < len(names):
        return None
    return [max(-100.0, min(100.0, found[i])) for i in range(len(names))]


def pearson_r(point_lists: list[list[list[float]]]) -> float:
    """Correlation over every (report, reference) point of the run, not a mean of per-doc r."""
    from scipy.stats import pearsonr

    points = [point for points in point_lists for point in points]
    if len(points) < 3:
        return float("nan")
    reports, references = zip(*points, strict=True)
    if len(set(reports)) < 2 or len(set(references)) < 2:
        return float("nan")
    return float(pearsonr(reports, references).statistic)


def mean_of_points(value_lists: list[list[float]]) -> float:
    values = [v for values in value_lists for v in values]
    return float(sum(values) / len(values)) if values else float("nan")


def instilled_record(adapter: str | None) -> dict[str, Any]:
    """Scenarios and weights saved by ``introspect train instill`` beside an adapter."""
    if not adapter:
        raise IntrospectError(
            "preferences: reference=instilled needs a model with an instilled adapter: "
            "evaluate pretrained=M,peft=ADAPTER (or subject_peft=ADAPTER) from `introspect train instill`"
        )
    path = Path(adapter) / INSTILLED_FILE
    try:
        return json.loads(path.read_text())
    except OSError:
        raise IntrospectError(
            f"preferences: {path} not found; reference=instilled needs an adapter written by "
            "`introspect train instill`"
        ) from None


def _seed(*parts: Any) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)
