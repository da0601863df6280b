"""Whether two runs may be compared at all: same task, references, subject and options.

A drop against a baseline means something only when both runs asked the same questions
of the same subject: for an introspect task that is the record lm-eval writes as
``configs.<task>.metadata.introspect`` (type version, subject and its fingerprint,
options, and a content fingerprint of the references); for every task lm-eval's task
version and the number of documents scored.
"""

from __future__ import annotations

from typing import Any

from harness_plugins.commands.gate.results import Results

# record field -> what the gate calls it
_RECORD_FIELDS = {
    "type_version": "explanation type version",
    "subject": "subject",
    "subject_fingerprint": "subject fingerprint",
    "reference_key": "reference key",
    "reference_fingerprint": "references (content fingerprint)",
    "options": "options",
}


def task_identity(results: Results, task: str) -> dict[str, Any]:
    """What must match for ``task`` to be compared across runs (missing parts left out)."""
    found = results.task(task)
    identity: dict[str, Any] = {}
    if found.version is not None:
        identity["task version"] = found.version
    if found.n is not None:
        identity["n (documents scored)"] = found.n
    if found.record is not None:
        for field, label in _RECORD_FIELDS.items():
            value = getattr(found.record, field)
            if value is not None:
                identity[label] = value
    return identity


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _option_differences(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    keys = sorted(set(new) | set(old))
    return [
        f"option {k} {_short(old.get(k))} -> {_short(new.get(k))}"
        for k in keys
        if new.get(k) != old.get(k)
    ]


def differences(results: Results, baseline: Results, tasks: list[str]) -> list[str]:
    """One line per thing that differs between the runs, for the compared tasks."""
    lines: list[str] = []
    for task in sorted(set(tasks)):
        new, old = task_identity(results, task), task_identity(baseline, task)
        for label in sorted(set(new) & set(old)):
            if new[label] == old[label]:
                continue
            if label == "options" and isinstance(new[label], dict) and isinstance(old[label], dict):
                lines += [f"{task}: {d}" for d in _option_differences(new[label], old[label])]
            else:
                lines.append(f"{task}: {label} {_short(old[label])} -> {_short(new[label])}")
        if ("subject" in new) != ("subject" in old):
            lines.append(f"{task}: only one run has the introspect record (subject, references)")
    return lines
