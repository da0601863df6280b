"""The one reader of lm-eval output: a results JSON as `RunResults` of `TaskResult`s.

``lm_eval --output_path DIR`` writes ``DIR/<model>/results_<timestamp>.json``: per task its
``metric,filter`` values with their ``metric_stderr,filter``, ``n-samples``, ``versions``,
``higher_is_better``, and for an introspect task the run record (`RunRecord`) under
``configs.<task>.metadata.introspect``. ``introspect report``, ``plot``, ``gate`` and
``matrix`` and the console table read it here, so a file is found, checked and parsed one
way, and the record is a dataclass instead of a dict read back by key.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.metric_names import display_name, is_breakdown, parse_result_key, stderr_key

RECORD_KEY = "introspect"
"""Where the run record sits in a task's config: ``configs.<task>.metadata.introspect``."""
LM_EVAL_DATE_FORMATS = ("%Y-%m-%dT%H-%M-%S.%f", "%Y-%m-%dT%H-%M-%S")

ErrorFactory = Callable[[str], BaseException]


@dataclass(frozen=True)
class RunRecord:
    """What one introspect run used, as lm-eval stored it (the fields of the writer's
    `harness_plugins.references.ReferenceRecord`; a test keeps the two lists equal).

    Every field has a default, so a record written by an older version (fewer fields)
    still reads; fields this version does not know stay in ``extra``.
    """

    mode: str | None = None
    explanation_type: str | None = None
    type_version: str | None = None
    subject: str | None = None
    explainer: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    package_version: str | None = None
    subject_fingerprint: str | None = None
    explainer_fingerprint: str | None = None
    explainer_base_fingerprint: str | None = None
    explainer_adapter: str | None = None
    explainer_adapter_fingerprint: str | None = None
    reference_fingerprint: str | None = None
    reference_cache: str | None = None
    reference_key: str | None = None
    references_built: int = 0
    reference_build_seconds: float = 0.0
    reference_summary: str = ""
    cross_model_maps: dict[str, Any] | None = None
    num_fewshot: int = 0
    fewshot_reference_key: str | None = None
    vector_projection: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """The record of a results file; missing fields take their defaults."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        if not isinstance(values.get("options", {}), dict):
            values.pop("options")
        extra = {str(k): v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)

    @property
    def explainer_or_subject(self) -> str | None:
        """Who explained: a self run may leave ``explainer`` out."""
        return self.explainer or self.subject


def record_fields() -> tuple[str, ...]:
    """The field names a run record is written and read with."""
    return tuple(f.name for f in dataclasses.fields(RunRecord) if f.name != "extra")


def number(value: Any) -> float | None:
    """A results value as a float: None for lm-eval's "N/A", NaN, a bool or a non-number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class MetricValue:
    """One metric of one task under one filter, with its standard error."""

    name: str
    filter: str
    value: float | None
    stderr: float | None
    raw: Any = None
    """What lm-eval wrote (``"N/A"`` stays visible for error messages)."""

    @property
    def key(self) -> str:
        return f"{self.name},{self.filter}"

    @property
    def display(self) -> str:
        return display_name(self.name, self.filter)


@dataclass(frozen=True)
class TaskResult:
    """One task (or group) of a run: its metrics, n, direction flags and run record."""

    name: str
    entries: Mapping[str, Any] = field(default_factory=dict)
    """lm-eval's own entry: ``metric,filter`` keys plus ``alias`` and the like."""
    n: int | None = None
    """Documents scored (``n-samples.effective``)."""
    record: RunRecord | None = None
    """The introspect run record; None for a task that is not an introspect task."""
    higher_is_better: Mapping[str, Any] = field(default_factory=dict)
    version: Any = None
    group: bool = False
    """Whether lm-eval wrote it under ``groups`` (an aggregate of tasks, e.g. ``mmlu``)."""

    @cached_property
    def metrics(self) -> tuple[MetricValue, ...]:
        """Every metric (stderr entries folded into their metric), in lm-eval's order."""
        found = []
        for key, raw in self.entries.items():
            parsed = parse_result_key(key)
            if parsed is None or parsed.stderr:
                continue
            err = number(self.entries.get(stderr_key(parsed.metric, parsed.filter)))
            found.append(MetricValue(parsed.metric, parsed.filter, number(raw), err, raw))
        return tuple(found)

    def metric(self, name: str, filt: str | None = None) -> MetricValue | None:
        """``name`` under ``filt`` (under any filter when None: the first one)."""
        return next((m for m in self.metrics if m.name == name and filt in (None, m.filter)), None)

    @property
    def summary_metrics(self) -> tuple[MetricValue, ...]:
        """The metrics that are not one layer, pair or cell of a breakdown."""
        return tuple(m for m in self.metrics if not is_breakdown(m.name))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class RunResults:
    """One lm-eval results file. ``tasks`` merges ``groups`` and ``results`` (a task of the
    same name wins), so a group such as ``mmlu`` is read like a task."""

    data: Mapping[str, Any]
    path: Path | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | None = None) -> RunResults:
        return cls(data=data, path=path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        error: ErrorFactory = IntrospectError,
        *,
        require_results: bool = True,
    ) -> RunResults:
        """Read ``path`` (a results file, or the newest ``results_*.json`` under a folder).

        A missing, unreadable or malformed file fails through ``error`` (each command
        has its own error type) with one line saying what to pass instead.
        """
        file = find_results_file(path, error)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise error(f"cannot read results file {file}: {reason}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(
                f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "pass the results_*.json written by lm_eval --output_path"
            ) from None
        except RecursionError:
            raise error(
                f"{file} is nested too deeply to be a results file; pass the results_*.json "
                "written by lm_eval --output_path"
            ) from None
        if not isinstance(data, dict) or (
            require_results and not isinstance(data.get("results"), dict)
        ):
            raise error(
                f'{file} has no "results" dict; pass the results_*.json written by '
                "lm_eval --output_path (not a samples_*.jsonl or another file)"
            )
        return cls(data=data, path=file)

    @cached_property
    def tasks(self) -> dict[str, TaskResult]:
        names = [*_dict(self.data.get("groups")), *_dict(self.data.get("results"))]
        return {
            str(name): self.task(str(name))
            for name in dict.fromkeys(names)
            if isinstance(self._entries(str(name)), dict)
        }

    def _entries(self, name: str) -> Any:
        results = _dict(self.data.get("results"))
        return results[name] if name in results else _dict(self.data.get("groups")).get(name)

    def task(self, name: str) -> TaskResult:
        """``name``'s result; a task with no metrics in this file reads as an empty one."""
        entries = self._entries(name)
        metadata = _dict(_dict(_dict(self.data.get("configs")).get(name)).get("metadata"))
        record = metadata.get(RECORD_KEY)
        n = _dict(_dict(self.data.get("n-samples")).get(name)).get("effective")
        return TaskResult(
            name=name,
            entries=entries if isinstance(entries, dict) else {},
            n=int(n) if isinstance(n, (int, float)) and not isinstance(n, bool) else None,
            record=RunRecord.from_dict(record) if isinstance(record, dict) and record else None,
            higher_is_better=_dict(_dict(self.data.get("higher_is_better")).get(name)),
            version=_dict(self.data.get("versions")).get(name),
            group=name not in _dict(self.data.get("results"))
            and name in _dict(self.data.get("groups")),
        )

    def __iter__(self) -> Iterator[TaskResult]:
        return iter(self.tasks.values())

    @property
    def introspect_tasks(self) -> list[TaskResult]:
        """The tasks with a run record, sorted by name."""
        return [self.tasks[name] for name in sorted(self.tasks) if self.tasks[name].record]

    @property
    def higher_is_better(self) -> dict[str, dict[str, Any]]:
        return {
            str(k): v
            for k, v in _dict(self.data.get("higher_is_better")).items()
            if isinstance(v, dict)
        }

    @property
    def model_name(self) -> str | None:
        """The evaluated model as lm-eval's ``config`` names it."""
        config = _dict(self.data.get("config"))
        return config.get("model_name") or config.get("model_args") or None


# ------------------------------------------------------------------ finding the file


def results_file_time(path: Path) -> datetime:
    """When lm-eval wrote ``path``: the timestamp in its name, else its mtime.

    The name wins because CI artifact downloads and checkouts reset mtimes, while
    lm-eval's ``results_<timestamp>.json`` survives them.
    """
    stamp = path.stem[len("results_") :]
    for fmt in LM_EVAL_DATE_FORMATS:
        try:
            return datetime.strptime(stamp, fmt)
        except ValueError:
            continue
    return datetime.fromtimestamp(path.stat().st_mtime)


def find_results_file(path: str | Path, error: ErrorFactory = IntrospectError) -> Path:
    """``path`` itself, or the newest ``results_*.json`` under it; ``error`` builds the failure."""
    p = Path(path)
    if not p.exists():
        raise error(
            f"results file not found: {p} "
            "(pass a results_*.json or the directory given to lm_eval --output_path)"
        )
    if p.is_file():
        return p
    if not p.is_dir():  # a FIFO or a device would block or never end
        raise error(f"{p} is neither a results file nor a directory; pass a results_*.json")
    candidates = [f for f in p.rglob("results_*.json") if f.is_file()]
    if not candidates:
        raise error(
            f"no results_*.json found under directory {p} "
            "(did lm_eval run with --output_path pointing there?)"
        )
    return max(candidates, key=lambda f: (results_file_time(f), str(f)))
