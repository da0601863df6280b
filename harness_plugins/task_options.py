"""Typed task options: one frozen class per explanation type, generated from its options.

`resolve_options` returns an instance: each declared option (the common ones included)
is an attribute holding its parsed value (``options.layer``), and the object is also a
read-only mapping, so code written for the plain dict of earlier versions
(``options["layer"]``, ``options.get``, ``{**options}``, ``dict(options)``) works unchanged.
A changed copy comes from `TaskOptions.replace`; `TaskOptions.as_dict` gives a plain dict.
"""

from __future__ import annotations

import dataclasses
import functools
import keyword
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from harness_plugins.errors import IntrospectError

if TYPE_CHECKING:
    from harness_plugins.options import Option


class TaskOptions(Mapping[str, Any]):
    """Base of every generated options class: attribute reads, read-only mapping, immutable.

    Subclasses are frozen dataclasses made by `options_class`; equality is the mapping's
    (an instance equals a plain dict with the same items).
    """

    type_name: ClassVar[str] = ""
    """The explanation type the class was generated for."""
    option_names: ClassVar[tuple[str, ...]] = ()
    """The declared options, in declaration order (the mapping's keys)."""

    # -- the read-only mapping
    def __getitem__(self, key: str) -> Any:
        if key not in self._names:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.option_names)

    def __len__(self) -> int:
        return len(self.option_names)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    _names: ClassVar[frozenset[str]] = frozenset()

    def __getattr__(self, name: str) -> Any:
        """Only reached for a name that is no option (nor method): say which ones exist."""
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self.type_name or 'task'} has no option {name!r}; "
            f"options: {', '.join(sorted(self.option_names))}"
        )

    # -- copies
    def as_dict(self) -> dict[str, Any]:
        """A plain dict of every option (what a JSON record or a cache key holds)."""
        return {name: getattr(self, name) for name in self.option_names}

    def replace(self, **changes: Any) -> TaskOptions:
        """A copy with some options changed (values as parsed; an unknown name is an error)."""
        unknown = sorted(set(changes) - self._names)
        if unknown:
            raise IntrospectError(
                f"{self.type_name or 'task'}: unknown option {unknown[0]!r}; "
                f"options: {', '.join(sorted(self.option_names))}"
            )
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def __reduce__(self) -> tuple[Any, ...]:
        # the class is generated: pickle (and datasets' fingerprinting) rebuild it by its spec
        return _restore, (self.type_name, self._spec, self.as_dict())

    _spec: ClassVar[tuple[tuple[str, type], ...]] = ()


RESERVED = frozenset(
    name for name in dir(TaskOptions) if not name.startswith("__") or name == "__init__"
)
"""Names an option cannot have: they are the object's own methods."""


def options_class(type_name: str, declared: Iterable[Option]) -> type[TaskOptions]:
    """The frozen options class of an explanation type (one per type and option table)."""
    return _generate(type_name, tuple((option.name, option.kind) for option in declared))


def _class_name(type_name: str) -> str:
    words = [w for w in "".join(c if c.isalnum() else "_" for c in type_name).split("_") if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) + "Options"
    return name if name.isidentifier() else "TaskOptions_"


@functools.cache
def _generate(type_name: str, spec: tuple[tuple[str, type], ...]) -> type[TaskOptions]:
    for name, _ in spec:
        if not name.isidentifier() or keyword.iskeyword(name) or name in RESERVED:
            raise IntrospectError(
                f"explanation type {type_name!r}: option {name!r} cannot be an attribute "
                f"(not an identifier, or a name of the options object: "
                f"{', '.join(sorted(n for n in RESERVED if not n.startswith('_')))}); rename it"
            )
    cls = dataclasses.make_dataclass(
        _class_name(type_name),
        [(name, kind) for name, kind in spec],
        bases=(TaskOptions,),
        frozen=True,
        eq=False,  # the mapping's equality: equal to a dict with the same items
        namespace={
            "type_name": type_name,
            "option_names": tuple(name for name, _ in spec),
            "_names": frozenset(name for name, _ in spec),
            "_spec": spec,
            "__module__": __name__,
        },
    )
    cls.__doc__ = f"The options of the {type_name!r} explanation type (generated)."
    return cls


def make_options(
    type_name: str, declared: Iterable[Option], values: Mapping[str, Any]
) -> TaskOptions:
    """An options object of ``type_name`` from parsed ``values`` (one per declared option)."""
    return options_class(type_name, declared)(**values)


def _restore(
    type_name: str, spec: tuple[tuple[str, type], ...], values: Mapping[str, Any]
) -> TaskOptions:
    return _generate(type_name, spec)(**values)
