"""Simple facts for activation patching and Patchscopes attribute extraction.

Interpretability experiments on small models (135M-8B parameters) need facts
that such a model often completes correctly, so that patching one hidden state
can visibly change or recover the answer.  The built-in bank
(``builtin/facts.json``, written for this project from well-established facts)
serves two experiments:

* activation patching, CounterFact style: each :class:`Fact` pairs a subject
  with a *counterfactual subject* of the same relation whose object differs, and
  that counterfactual object is itself the true object of the counterfactual
  subject (``France -> Paris`` with ``Italy -> Rome``), so a patch from one run
  into the other has a known expected answer;
* Patchscopes attribute extraction: each :class:`AttributeTriple` has a target
  prompt with the placeholder ``x`` and a source sentence that mentions the
  subject without giving the answer away.

`harness_plugins.banks.patchscopes_tsv` reads the Patchscopes repository's TSV files; train and test
partitions come from `harness_plugins.partition`, by fact id.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from harness_plugins.errors import located_error

__all__ = [
    "BUILTIN_FILE",
    "AttributeTriple",
    "Fact",
    "builtin_attribute_triples",
    "builtin_facts",
]

BUILTIN_FILE = "facts.json"

_FORMAT = "harness_plugins.fact_bank/v1"
_SLOT = "{}"
_STANDALONE_X = re.compile(r"(?<!\w)x(?!\w)")
# Patchscopes' TSVs keep some non-ASCII text as literal \uXXXX escapes ("Bras\u00edlia").


@dataclass(frozen=True)
class Fact:
    """One subject-relation-object fact plus the counterfactual run to patch from or into."""

    fact_id: str
    relation: str
    subject: str
    object: str
    counterfactual_subject: str
    counterfactual_object: str
    template: str

    def prompt(self, subject: str | None = None) -> str:
        """The clean prompt, or with ``subject=fact.counterfactual_subject`` the corrupted one.

        Both prompts share every token outside the subject, which is what
        position-wise activation patching needs.
        """
        return self.template.replace(_SLOT, self.subject if subject is None else subject, 1)


@dataclass(frozen=True)
class AttributeTriple:
    """A Patchscopes attribute-extraction case.

    ``prompt_target`` is the relation template with the literal placeholder
    ``x`` (the position the subject's hidden state is patched into);
    ``prompt_source`` is a sentence containing ``subject``, read for that
    hidden state.
    """

    triple_id: str
    relation: str
    subject: str
    object: str
    prompt_target: str
    prompt_source: str
    position_source: int | None = None
    """The file's token index of the subject in ``prompt_source`` (None: its last mention)."""
    mention: str | None = None
    """The subject's last word(s) when ``prompt_source`` holds only those (None: all of it)."""
    source_end: int | None = None
    """Where the file's tokens of ``prompt_source`` end the subject, in characters (if known)."""


# --------------------------------------------------------------------------
# Built-in bank
# --------------------------------------------------------------------------


def _text(value: Any, source: str, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise located_error(
            source, where, f"field {field!r}", f"expected a non-empty string, got {value!r}"
        )
    if value != value.strip():
        raise located_error(
            source, where, f"field {field!r}", f"has leading or trailing spaces: {value!r}"
        )
    return value


def _parse_relations(doc: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    relations = doc.get("relations")
    if not isinstance(relations, Mapping) or not relations:
        raise located_error(source, "field 'relations'", "expected a non-empty object")
    parsed: dict[str, dict[str, Any]] = {}
    for name, spec in relations.items():
        where = f"relation {name!r}"
        if not isinstance(spec, Mapping):
            raise located_error(source, where, "expected an object")
        template = _text(spec.get("template"), source, where, "template")
        if template.count(_SLOT) != 1:
            raise located_error(
                source, where, "field 'template'", f"needs exactly one {_SLOT}: {template!r}"
            )
        attribute = spec.get("attribute_template")
        sources = spec.get("source_templates", [])
        if not isinstance(sources, list):
            raise located_error(source, where, "field 'source_templates'", "expected a list")
        if attribute is not None:
            _text(attribute, source, where, "attribute_template")
            if not _STANDALONE_X.search(attribute):
                raise located_error(
                    source,
                    where,
                    "field 'attribute_template'",
                    f"needs a standalone x: {attribute!r}",
                )
            if not sources:
                raise located_error(
                    source, where, "field 'source_templates'", "needed with an attribute_template"
                )
        for text in sources:
            _text(text, source, where, "source_templates")
            if text.count(_SLOT) != 1:
                raise located_error(
                    source,
                    where,
                    "field 'source_templates'",
                    f"needs exactly one {_SLOT}: {text!r}",
                )
        parsed[str(name)] = {
            "template": template,
            "attribute_template": attribute,
            "source_templates": tuple(sources),
        }
    return parsed


def _parse_bank(text: str, source: str) -> tuple[tuple[Fact, ...], tuple[AttributeTriple, ...]]:
    """Validate everything the experiments rely on, so a bad edit fails at load time."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise located_error(
            source, f"line {error.lineno}", f"not valid JSON ({error.msg})"
        ) from None
    if not isinstance(doc, Mapping) or doc.get("format") != _FORMAT:
        raise located_error(source, "field 'format'", f"expected {_FORMAT!r}")
    relations = _parse_relations(doc, source)
    raw_facts = doc.get("facts")
    if not isinstance(raw_facts, list) or not raw_facts:
        raise located_error(source, "field 'facts'", "expected a non-empty list")

    facts: list[Fact] = []
    objects: dict[tuple[str, str], str] = {}  # (relation, subject) -> object
    for index, raw in enumerate(raw_facts):
        where = f"facts[{index}]"
        if not isinstance(raw, Mapping):
            raise located_error(source, where, "expected an object")
        values = {
            key: _text(raw.get(key), source, where, key)
            for key in (
                "id",
                "relation",
                "subject",
                "object",
                "counterfactual_subject",
                "counterfactual_object",
            )
        }
        where = f"{where} ({values['id']})"
        relation = values["relation"]
        if relation not in relations:
            raise located_error(
                source, where, "field 'relation'", f"{relation!r} is not in 'relations'"
            )
        if (relation, values["subject"]) in objects:
            raise located_error(source, where, "field 'subject'", "appears twice in this relation")
        objects[relation, values["subject"]] = values["object"]
        facts.append(
            Fact(
                fact_id=values["id"],
                relation=relation,
                subject=values["subject"],
                object=values["object"],
                counterfactual_subject=values["counterfactual_subject"],
                counterfactual_object=values["counterfactual_object"],
                template=relations[relation]["template"],
            )
        )

    seen_ids: set[str] = set()
    for index, fact in enumerate(facts):
        where = f"facts[{index}] ({fact.fact_id})"
        if fact.fact_id in seen_ids:
            raise located_error(source, where, "field 'id'", "appears twice")
        seen_ids.add(fact.fact_id)
        if fact.counterfactual_subject == fact.subject:
            raise located_error(
                source, where, "field 'counterfactual_subject'", "equals the subject"
            )
        if fact.counterfactual_object == fact.object:
            raise located_error(source, where, "field 'counterfactual_object'", "equals the object")
        # The patched run's expected answer must be true of the counterfactual subject.
        true_object = objects.get((fact.relation, fact.counterfactual_subject))
        if true_object != fact.counterfactual_object:
            raise located_error(
                source,
                where,
                "field 'counterfactual_object'",
                f"{fact.counterfactual_subject!r} has object {true_object!r} in this relation,"
                f" not {fact.counterfactual_object!r}",
            )

    triples: list[AttributeTriple] = []
    for name, spec in relations.items():
        if spec["attribute_template"] is None:
            continue
        templates = spec["source_templates"]
        members = [fact for fact in facts if fact.relation == name]
        for index, fact in enumerate(members):
            triples.append(
                AttributeTriple(
                    triple_id=fact.fact_id,
                    relation=name,
                    subject=fact.subject,
                    object=fact.object,
                    prompt_target=spec["attribute_template"],
                    prompt_source=templates[index % len(templates)].replace(_SLOT, fact.subject),
                )
            )
    return tuple(facts), tuple(triples)


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[tuple[Fact, ...], tuple[AttributeTriple, ...]]:
    resource = resources.files("harness_plugins.banks").joinpath(BUILTIN_FILE)
    return _parse_bank(resource.read_text(encoding="utf-8"), str(resource))


def builtin_facts() -> list[Fact]:
    """The built-in facts in file order (parsed once; a fresh list per call so callers may edit it).

    Ids (``capital-017``) are stored in the file, not derived from positions,
    so fixing or removing one fact never renames another or moves it across a
    train/test split (`harness_plugins.partition`).
    """
    return list(_builtin()[0])


def builtin_attribute_triples() -> list[AttributeTriple]:
    """Patchscopes triples for the relations with an attribute template.

    A triple's id is the id of the fact with the same relation and subject,
    so results from both experiments can be joined.
    """
    return list(_builtin()[1])


# --------------------------------------------------------------------------
# Patchscopes TSV files
# --------------------------------------------------------------------------
