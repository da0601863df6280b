"""Task options: declared once per explanation type, given through lm-eval's --metadata.

lm-eval merges ``--model_args`` and ``--metadata`` into one dict and hands it to every
task, so an option table must tell our options apart from model arguments and reject
typos with a message that lists what exists (``introspect options TASK`` prints them).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.task_options import TaskOptions, make_options


@dataclass(frozen=True)
class Option:
    """One task option: its default, its type, and whether it changes the ground truth."""

    name: str
    default: Any
    help: str
    kind: type = str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    affects_reference: bool = True
    """Part of the reference-dataset cache key (False for explainer-side options)."""
    names_file: bool = False
    """The value may name a local file or folder: the cache key holds a hash of its content."""
    fields: tuple[str, ...] | None = None
    """The value is a ``str.format`` template that may use these fields (and no others)."""

    def parse(self, value: Any, task: str) -> Any:
        """Convert a --metadata / --model_args value to this option's type, or explain why not."""
        if value is None and self.default is None:
            return None
        try:
            parsed = _convert(value, self.kind)
        except (TypeError, ValueError):
            raise IntrospectError(
                f"{task}: option {self.name}={value!r} is not a valid {self.kind.__name__} "
                f"({self.help}); default: {self.default!r}"
            ) from None
        if self.fields is not None and parsed is not None:
            _check_template(self, parsed, task)
        if self.choices is not None and parsed not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise IntrospectError(f"{task}: option {self.name}={value!r} is not one of {allowed}")
        if self.minimum is not None and parsed < self.minimum:
            raise IntrospectError(
                f"{task}: option {self.name}={value!r} is below the minimum {self.minimum}"
            )
        if self.maximum is not None and parsed > self.maximum:
            raise IntrospectError(
                f"{task}: option {self.name}={value!r} is above the maximum {self.maximum}"
            )
        return parsed


def _check_template(option: Option, template: str, task: str) -> None:
    """A template that `str.format` would reject, or with a field it is not given, is an
    error now, before any weights load (not a KeyError in the middle of a run)."""
    allowed = ", ".join("{" + f + "}" for f in option.fields or ()) or "none"
    try:
        used = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        raise IntrospectError(
            f"{task}: option {option.name}={template!r} is not a valid template ({error}); "
            f"write braces as {{{{ and }}}}; fields: {allowed}"
        ) from None
    unknown = [f for f in used if f.split(".")[0].split("[")[0] not in (option.fields or ())]
    if unknown:
        raise IntrospectError(
            f"{task}: option {option.name}={template!r} uses the unknown field "
            f"{{{unknown[0]}}}; fields it may use: {allowed}"
        )


def _convert(value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)
        if not math.isfinite(number):  # NaN passes every minimum and maximum
            raise ValueError(value)
        return number
    if kind is str:
        if isinstance(value, (dict, list)):
            raise TypeError(value)
        return str(value)
    if kind in (list, dict):
        parsed = json.loads(value) if isinstance(value, str) else value
        if not isinstance(parsed, kind):
            raise TypeError(value)
        return parsed
    return kind(value)


# Options every explanation type has: who the subject is and how the ground truth is run.
COMMON_OPTIONS: tuple[Option, ...] = (
    Option(
        "subject",
        None,
        "model whose internals are explained (alias, local folder or Hub id); "
        "default: the explainer itself (self-explanation)",
    ),
    Option("subject_peft", None, "PEFT adapter applied to the subject"),
    Option("backend", "hf", "ground-truth backend that runs the subject", affects_reference=False),
    Option("seed", 0, "seed for everything random in the questions and references", kind=int),
    Option(
        "partition",
        "test",
        "which side of the train/test partition to evaluate (disjoint by question)",
        choices=("train", "test"),
    ),
    Option(
        "test_fraction",
        0.2,
        "share of questions that go to the test partition",
        kind=float,
        minimum=0.01,
        maximum=0.99,
    ),
    Option(
        "max_docs",
        1000,
        "largest number of documents in the evaluated partition",
        kind=int,
        minimum=1,
    ),
    Option(
        "gt_batch_size",
        16,
        "batch size for running the subject while building references",
        kind=int,
        minimum=1,
        affects_reference=False,
    ),
    Option(
        "chat_format",
        "auto",
        "how the explainer prompt is rendered without --apply_chat_template: the "
        "explainer tokenizer's chat template (template), a plain User:/Assistant: "
        "transcript (plain), or the template when there is one (auto)",
        choices=("auto", "template", "plain"),
        affects_reference=False,
    ),
)

NO_INTERNALS = Option(
    "no_internals",
    False,
    "control run: the vector slot holds a random vector of the same norm, to show whether "
    "the explainer uses the vector at all",
    kind=bool,
    affects_reference=False,
)
"""Declared by the types whose prompts carry a subject vector in a slot."""

# Keys lm-eval itself puts into a task's metadata.
LM_EVAL_METADATA_KEYS = frozenset({"version", "config_source", "_metadata", "num_fewshot"})


def resolve_options(
    task: str,
    declared: Iterable[Option],
    metadata: Mapping[str, Any],
    *,
    model_arguments: Iterable[str] = (),
    known_model_arguments: Iterable[str] | None = None,
    other_options: Iterable[str] = (),
    warn: Callable[[str], None] | None = None,
    type_name: str | None = None,
) -> TaskOptions:
    """Values for every declared option: defaults overridden by metadata, validated.

    The result is the type's frozen options class (`harness_plugins.task_options`):
    ``options.layer`` for the parsed value, and a read-only mapping (``options["layer"]``).
    ``type_name`` names the class (default: ``task`` without its ``introspect_`` prefix).

    lm-eval gives every task of a run the same metadata, so options of other explanation
    types (``other_options``) and the model's arguments (``model_arguments``, any model
    lm-eval may evaluate) are passed over quietly. Any other key that is not a model
    argument is an error when it looks like a misspelt option, or when the model's own
    arguments are known (the ``introspect`` model reports them); otherwise it is passed
    over with a warning, since ``--model hf`` forwards unknown keys to ``from_pretrained``.
    """
    table = {option.name: option for option in declared}
    other_options = set(other_options)
    values = {name: option.default for name, option in table.items()}
    model_args = set(model_arguments)
    exact_model_args = set(known_model_arguments) if known_model_arguments is not None else None
    for key, value in metadata.items():
        if key in table:
            values[key] = table[key].parse(value, task)
            continue
        if key in LM_EVAL_METADATA_KEYS or key in model_args or key in other_options:
            continue
        if exact_model_args is not None and key in exact_model_args:
            continue
        close = difflib.get_close_matches(key, table, n=1, cutoff=0.75) or [
            name for name in table if key.startswith(f"{name}_") or key.endswith(f"_{name}")
        ]
        if close or exact_model_args is not None:
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise IntrospectError(
                f"{task}: unknown option {key!r}; {hint}"
                f"options: {', '.join(sorted(table))} (`introspect options {task}` describes them)"
            )
        if warn is not None:
            warn(f"{task}: {key!r} is not an option of this task; it is ignored here")
    return make_options(type_name or task.removeprefix("introspect_"), table.values(), values)


def content_key(value: Any) -> tuple[Any, dict[str, str] | None]:
    """(cache-key value, manifest record) for the value of a `Option.names_file` option.

    A local file is keyed by its SHA-256, a local folder by the hashes of all its files
    (``.git`` left out), so an edited file, or another file at the same path, gets its
    own references; anything else (unset, a Hub dataset id) keys as itself.
    """
    from pathlib import Path

    from ground_truth.store import file_sha256

    if not value or not isinstance(value, str):
        return value, None
    path = Path(value).expanduser()
    if path.is_file():
        digest = file_sha256(path)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
        body = json.dumps([[str(p.relative_to(path)), file_sha256(p)] for p in files])
        digest = hashlib.sha256(body.encode()).hexdigest()
    else:
        return value, None
    return f"sha256:{digest}", {"path": str(path.resolve()), "sha256": digest}


def describe_options(declared: Iterable[Option]) -> list[tuple[str, str, str]]:
    """Rows of (name, default, help) for `introspect options`."""
    rows = []
    for option in declared:
        extra = f" [one of: {', '.join(map(str, option.choices))}]" if option.choices else ""
        rows.append((option.name, json.dumps(option.default), option.help + extra))
    return rows
