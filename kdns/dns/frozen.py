"""Frozen value classes that are cheap to build.

A frozen dataclass's generated `__init__` sets each field through `object.__setattr__` (its own
`__setattr__` refuses), a generic attribute lookup per field: 1.4 µs for a 13-field Request
where a plain slotted class takes 0.2. The full path builds a Request, a ClusterName, a Reply
and records for every query asked once. `fast_init` replaces that `__init__` with one that
stores each field through its slot's descriptor directly (0.7 µs for the Request): the same
signature, defaults and result, and the instances stay exactly as frozen.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Decorate a `@dataclass(frozen=True, slots=True)` class (applied above the dataclass
    decorator). Only plain fields are supported: no default factories, keyword-only fields or
    `__post_init__`, which the generated `__init__` would not honour."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    if "__post_init__" in vars(cls) or not params:
        raise TypeError(f"{cls.__name__}: fast_init needs plain dataclass fields")
    namespace: dict[str, Any] = {}
    signature: list[str] = []
    body: list[str] = []
    for f in params:
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init needs plain dataclass fields")
        if f.default is dataclasses.MISSING:
            signature.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            signature.append(f"{f.name}=_default_{f.name}")
        namespace[f"_set_{f.name}"] = vars(cls)[f.name].__set__  # the slot's member descriptor
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(signature)}):\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # as dataclasses itself builds __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
