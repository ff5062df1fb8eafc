"""Which kept parents a change concerns: the dependency index of `--watch` and `wait`.

Under an informer every store notes the keys of the objects that changed
(informer.Reflector.changed). A `Trace` is kept for one list of parents (a
kind in a namespace, or everywhere): the stores their details were read
from, where each store was when it was last read, and one index of two
kinds of entries, each pointing at the parents (by uid) it concerns:

- what every related object of a parent carries (relations.claims): the
  label its selector requires a value of, a name it refers to, its uid for
  the objects it owns; and its name, for the events about it;
- what each parent's details showed: its related objects and the events
  read for them and for it.

A changed object concerns the parents that claim one of its marks
(relations.marks: a new pod of a Job) and those that showed it (a pod
deleted, or relabelled away). Only those parents are joined and evaluated
again, as client-go's event handlers enqueue only the keys that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Protocol, runtime_checkable

from .relations import ListScope

JSON = dict[str, Any]
Mark = tuple[int, int]
FIRST: Mark = (1, 0)  # a store's mark right after its first list
ANY = "*"  # the claim of a parent any object of the relation's lists may concern


@runtime_checkable
class Changes(Protocol):
    """What an informer's reader tells of its stores (informer.CachedApi)."""

    def marks(self) -> dict[ListScope, Mark]: ...

    def changed(self, scope: ListScope, mark: Mark) -> tuple[Mark, dict[tuple[str, str], JSON | None] | None]: ...


def store_key(obj: JSON) -> tuple[str, str]:
    """An object's key in a store: its namespace ("" for none) and name."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def shown(reader: str, obj: JSON) -> tuple[str, str, str]:
    """The entry of an object a parent's details showed, read by `reader` (a relation, or events)."""
    return reader, *store_key(obj)


def involved(obj: JSON) -> tuple[str, str]:
    """The namespace and name of the object an event is about."""
    about = obj.get("involvedObject") or {}
    return str(about.get("namespace") or (obj.get("metadata") or {}).get("namespace") or ""), str(about.get("name"))


class Trace:
    """The stores one list of parents was read from, and which parents each object concerns."""

    def __init__(self) -> None:
        self.marks: dict[ListScope, Mark] = {}  # each store read, where it was when last read
        self.readers: dict[ListScope, set[str]] = {}  # who read it: a relation's name, "events" or "events:NAME"
        self.index: dict[Hashable, set[str]] = {}  # a claim or a shown object: the parents it concerns
        self._entries: dict[str, list[Hashable]] = {}  # by parent: its entries in the index
        self._begun: dict[ListScope, Mark] = {}  # where each store was when the collection in progress began

    def begin(self, api: object, marks: Callable[[str, JSON], list[Hashable]]) -> set[str] | None:
        """The parents concerned by what changed in the stores since the last collection, or None for all of
        them (the first collection, a store listed again, or changes it no longer remembers). `marks` gives an
        object's marks, as the reader of its store claims them."""
        if not isinstance(api, Changes):
            return None
        self._begun = api.marks()
        if not self.marks:
            return None
        concerned: set[str] = set()
        for scope, mark in self.marks.items():
            now, objects = api.changed(scope, mark)
            self._begun[scope] = now
            if objects is None:
                return None
            for (namespace, name), obj in objects.items():
                for reader in self.readers[scope]:
                    concerned |= self.index.get((reader, namespace, name), set())
                    if obj is not None:
                        for mark_ in marks(reader, obj):
                            concerned |= self.index.get(mark_, set())
        return concerned

    def record(self, uid: str, entries: list[Hashable]) -> None:
        """A parent's details were assembled again: its claims and what they showed."""
        self.forget(uid)
        self._entries[uid] = entries
        for entry in entries:
            self.index.setdefault(entry, set()).add(uid)

    def forget(self, uid: str) -> None:
        for entry in self._entries.pop(uid, ()):
            parents = self.index.get(entry)
            if parents is not None:
                parents.discard(uid)
                if not parents:
                    del self.index[entry]

    def parents(self) -> set[str]:
        return set(self._entries)

    def end(self, readers: dict[ListScope, set[str]]) -> None:
        """The collection is over: each store it read is marked where it was when the collection began (a
        store listed during it, right after its list); changes since are the next collection's."""
        for scope, names in readers.items():
            self.readers.setdefault(scope, set()).update(names)
        for scope in self.readers:
            self.marks[scope] = self._begun.get(scope, FIRST)
