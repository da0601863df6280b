"""Vectors inside explainer prompts: markers in the request text, the vectors kept aside.

Two markers, both plain text inside an lm-eval request:

* ``<begin><rep:KEY><end>``: a vector *slot*. The ``introspect`` model puts one placeholder
  token there and writes the vector over its input embedding.
* ``<introspect:KEY>``: writes at deeper sites (Patchscopes): each registered
  (site, vector) pair is written at the token that ends right before the marker; with
  ``mode="add", onward=True`` (injected thoughts) it is added there and at every later
  token, generated ones included.

``KEY`` is a content hash of what it names, kept in the `VectorTable` of the evaluation
that rendered the prompt (created with it, cleared once the model has answered), so
requests whose vectors differ have different text: lm-eval's request cache (``--use_cache``) can
never confuse them, and the same vector always gives the same request. ``--model hf``
is stopped before it could see a marker (`harness_plugins.lm_eval_adapter.task`).

When the explainer is another model (cross-explanation) the table holds a *mapper* from
subject to explainer space; every vector registered in it passes through the mapper.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

BEGIN, END = "<begin>", "<end>"
_MARKER = re.compile(r"<rep:([0-9a-f]{16})>|<introspect:([0-9a-f]{16})>")

# (vector, subject layer or None, site or None) -> (vector in explainer space, explainer site)
Mapper = Callable[[Any, "int | None", "str | None"], "tuple[Any, str | None]"]

_active: contextvars.ContextVar[VectorTable | None] = contextvars.ContextVar(
    "introspect_vector_table", default=None
)
# Tables that may still be read: a table leaves when cleared or garbage-collected.
_live: weakref.WeakSet[VectorTable] = weakref.WeakSet()


def _key(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "detach"):
            tensor = part.detach().float().cpu().contiguous()
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.numpy().tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


class VectorTable:
    """The vectors of one evaluation (or one training run), with an explicit lifetime.

    The owner (the lm-eval task, a training run) creates it, renders prompts inside
    `active` (every slot or write registered then lands here, through ``mapper`` when
    subject and explainer differ), lets the model read it, and `clear`s it once the model
    has answered. Readers find a key in any live table, so the model needs no handle.
    """

    def __init__(self, mapper: Mapper | None = None) -> None:
        self.mapper = mapper
        self._vectors: dict[str, Any] = {}
        self._sources: dict[str, tuple[Any, int | None, float]] = {}
        self._interventions: dict[str, tuple[tuple[str, str, str, bool], ...]] = {}
        _live.add(self)

    def __len__(self) -> int:
        return len(self._vectors)

    @contextlib.contextmanager
    def active(self) -> Iterator[VectorTable]:
        """Register every vector of the block here (and keep this table readable)."""
        _live.add(self)
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def clear(self) -> None:
        """Drop every vector: the requests that named them have been answered."""
        self._vectors.clear()
        self._sources.clear()
        self._interventions.clear()
        _live.discard(self)

    def register(
        self, vector: Any, scale: float, layer: int | None, site: str | None
    ) -> tuple[str, str | None]:
        """Keep ``scale * vector``, mapped to the explainer's space (and site) if a mapper is set."""
        import torch

        value = torch.as_tensor(vector, dtype=torch.float32)
        source = (value, layer, float(scale))
        if self.mapper is not None:
            mapped_value, site = self.mapper(value, layer, site)
            value = torch.as_tensor(mapped_value, dtype=torch.float32)
        scaled = value * float(scale)
        key = _key(scaled)
        self._vectors[key] = scaled
        self._sources[key] = source  # what a learned projection reads instead of the map
        return key, site

    def add_intervention(self, pairs: tuple[tuple[str, str, str, bool], ...]) -> str:
        key = _key(*pairs)
        self._interventions[key] = pairs
        return key


def _current() -> VectorTable:
    table = _active.get()
    if table is None:
        raise RuntimeError(
            "a vector was put into a prompt outside any evaluation: render prompts inside "
            "`with VectorTable().active():` (the lm-eval task and training do)"
        )
    return table


def _lookup(kind: str, key: str) -> Any:
    for table in list(_live):
        found = getattr(table, kind).get(key)
        if found is not None:
            return found
    raise KeyError(
        f"vector {key} is in no live vector table (request built in another process, "
        "or after its evaluation ended?)"
    )


def register_vector(vector: Any, scale: float = 1.0, layer: int | None = None) -> str:
    return _current().register(vector, scale, layer, None)[0]


def no_internals_control(vector: Any, key: str) -> Any:
    """A random vector of ``vector``'s norm, seeded by ``key``: the no-internals control.

    Put in a slot instead of the subject's vector, it asks whether the explainer uses the
    vector at all (scores that stay the same come from the question's text alone).
    """
    import torch

    value = torch.as_tensor(vector, dtype=torch.float32)
    seed = int(hashlib.sha256(f"no-internals:{key}".encode()).hexdigest()[:12], 16)
    noise = torch.randn(value.shape, generator=torch.Generator().manual_seed(seed))
    return noise * (value.norm() / noise.norm().clamp_min(1e-12))


def slot(
    vector: Any, scale: float = 1.0, layer: int | None = None, control: str | None = None
) -> str:
    """The text of one vector slot, with its delimiters; ``layer``: the subject layer it is from.

    ``control``: a key (the document's id) that replaces the vector by the no-internals
    control (`no_internals_control`).
    """
    if control is not None:
        vector = no_internals_control(vector, control)
    return f"{BEGIN}<rep:{register_vector(vector, scale, layer)}>{END}"


def intervention(
    writes: Sequence[tuple[str, Any, int | None]], mode: str = "replace", onward: bool = False
) -> str:
    """The text that writes (site, vector, subject layer) triples at the token before it.

    ``mode``: replace or add; ``onward``: also at every later token, generated ones included.
    """
    table = _current()
    pairs = tuple(
        (mapped_site, key, mode, onward)
        for key, mapped_site in (
            table.register(vector, 1.0, layer, site) for site, vector, layer in writes
        )
    )
    return f"<introspect:{table.add_intervention(pairs)}>"


def has_markers(text: str) -> bool:
    return bool(_MARKER.search(text))


def vector(key: str) -> Any:
    """The vector a slot or write names, from whichever live table holds it."""
    return _lookup("_vectors", key)


def source(key: str) -> tuple[Any, int | None, float]:
    """(subject-space vector, subject layer, scale) behind a key: a learned projection
    (`harness_plugins.prompts.projections`) maps it instead of the fixed map."""
    return _lookup("_sources", key)


@dataclass(frozen=True)
class Piece:
    """Prompt text, a vector slot (``slot`` key), or writes at the previous token
    as (site, vector key, mode, onward)."""

    text: str = ""
    slot: str | None = None
    writes: tuple[tuple[str, str, str, bool], ...] = ()


def parse(text: str) -> list[Piece]:
    pieces: list[Piece] = []
    position = 0
    for match in _MARKER.finditer(text):
        if match.start() > position:
            pieces.append(Piece(text=text[position : match.start()]))
        if match.group(1):
            pieces.append(Piece(slot=match.group(1)))
        else:
            pieces.append(Piece(writes=_lookup("_interventions", match.group(2))))
        position = match.end()
    if position < len(text):
        pieces.append(Piece(text=text[position:]))
    return pieces


def slot_keys(messages: Any) -> list[str]:
    """The key of every vector slot in a conversation's messages, in order."""
    return [
        piece.slot
        for message in messages
        for piece in parse(message["content"])
        if piece.slot is not None
    ]


def strip_markers(text: str) -> str:
    """The prompt as a person would read it (vector slots shown as <rep>)."""
    return _MARKER.sub(lambda m: "<rep>" if m.group(1) else "", text)


def encode(
    text: str, tokenize: Callable[[str, bool], list[int]], placeholder: int
) -> tuple[list[int], list[tuple[int, str]], list[tuple[int, str, str]]]:
    """Token ids of a prompt with markers: one ``placeholder`` per slot.

    Returns the ids, the slots as (position, vector key) and the block writes as
    (position, site, vector key, mode, onward). ``tokenize(piece, first)`` encodes one text piece;
    ``first`` says whether it starts the prompt (and may take special tokens).
    """
    ids: list[int] = []
    slots: list[tuple[int, str]] = []
    writes: list[tuple[int, str, str, str, bool]] = []
    for piece in parse(text):
        if piece.text:
            ids += tokenize(piece.text, not ids)
        elif piece.slot is not None:
            slots.append((len(ids), piece.slot))
            ids.append(placeholder)
        else:
            if not ids:
                raise ValueError("an <introspect:...> marker must follow the token it writes at")
            writes += [(len(ids) - 1, *write) for write in piece.writes]
    return ids, slots, writes
