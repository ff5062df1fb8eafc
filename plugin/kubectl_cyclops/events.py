"""Watch events whose objects are decoded when a reader needs them, not as they arrive.

A busy watch sends several events for one object within a second (a Job's pod
is created, bound, started and finished), and `wait` and `--watch` read the
stores at most once per interval: only the newest state of each object is
ever read. So an event is read only as far as a store needs it at once (its
type, the object's namespace, name and resourceVersion), by msgspec, which
skips the rest of the event without building it, several times faster than
decoding it whole. The store keeps the event as sent and decodes it with
orjson when a reader asks (informer.Reflector); an event a newer one for the
same object replaced is never decoded.

Secrets, errors, and anything that is not a plain object event are decoded at
once (kube.KubeApi.watch), so Secret values are redacted before they leave
the API layer, as every other answer's are.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec
import orjson

from . import errors, redact

DEFERRED = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


class _Metadata(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    resourceVersion: str = ""


class _Object(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    metadata: _Metadata = msgspec.field(default_factory=_Metadata)


class _Head(msgspec.Struct):
    """What a store needs of an event at once; msgspec skips every other field without decoding it."""

    type: str = ""
    object: _Object = msgspec.field(default_factory=_Object)


_heads = msgspec.json.Decoder(_Head)


class Deferred(NamedTuple):
    """A watch event, its object not decoded yet: the event's type, the object's key in a store (namespace,
    "" for none, and name) and resourceVersion, and the event as the server sent it."""

    type: str
    key: tuple[str, str]
    version: str
    line: bytes

    def object(self) -> dict[str, Any]:
        """The event's object, decoded (as KubeApi's answers are: raw JSON, Secret values redacted)."""
        try:
            found = orjson.loads(self.line)["object"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise errors.UnreachableError(f"a watch event from the API server is not an object event ({exc})") from None
        return redact.obj(found)


def deferred(line: bytes) -> Deferred | None:
    """The event on `line`, its object left to decode when read; None for one to decode at once (an ERROR, a
    Secret, an event without a name, or a line that is not a JSON object event)."""
    try:
        head = _heads.decode(line)
    except msgspec.DecodeError:
        return None
    obj, meta = head.object, head.object.metadata
    if head.type not in DEFERRED or (obj.kind == "Secret" and obj.apiVersion == "v1"):
        return None
    if not meta.name and head.type != "BOOKMARK":
        return None
    return Deferred(head.type, (meta.namespace, meta.name), meta.resourceVersion, line)
