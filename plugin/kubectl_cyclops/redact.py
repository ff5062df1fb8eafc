"""Secret values never leave the API layer: only keys and decoded sizes remain."""

from __future__ import annotations

import base64
import binascii
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _is_secret(obj: dict[str, Any], list_kind: str | None = None) -> bool:
    return list_kind == "SecretList" or (obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1")


def obj(o: dict[str, Any], list_kind: str | None = None) -> dict[str, Any]:
    """The object, with a Secret's data replaced by the byte size of each value."""
    if not _is_secret(o, list_kind):
        return o
    sizes: dict[str, int] = {}
    for key, value in (o.get("data") or {}).items():
        try:
            sizes[key] = len(base64.b64decode(value or "", validate=True))
        except (binascii.Error, ValueError):
            sizes[key] = len(value or "")
    for key, value in (o.get("stringData") or {}).items():
        sizes[key] = len((value or "").encode())
    o["data"] = sizes
    o.pop("stringData", None)
    annotations = (o.get("metadata") or {}).get("annotations") or {}
    annotations.pop(LAST_APPLIED, None)
    for entry in (o.get("metadata") or {}).get("managedFields") or []:
        entry.pop("fieldsV1", None)
    return o


def response(body: dict[str, Any]) -> dict[str, Any]:
    """A GET response (one object or a list) with Secret values redacted."""
    if isinstance(body.get("items"), list):
        for item in body["items"]:
            obj(item, body.get("kind"))
        return body
    return obj(body)
