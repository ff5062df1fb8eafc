"""Lists page by page, as client-go's pager reads them, and the resourceVersion of what they return.

A continue token can expire while a long list is read (410 Expired). The list
then goes on with the token the server offers, from a newer snapshot (a
warning says so), or without one is read again once, whole, skipping what the
pages before gave: no object twice, none lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import errors
from .kube import JSON, Api

PAGE_SIZE = 500
_SNAPSHOT = ("resourceVersion", "resourceVersionMatch")  # not allowed beside a continue token
WARNINGS = "cyclops.warnings"  # a page's warnings for its objects (an expired continue token)


def resource_version(obj: JSON) -> str:
    """metadata.resourceVersion of an object or a list ("" when absent)."""
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _key(obj: JSON) -> str:
    """An object's place in a list: the server orders lists by namespace/name, bytewise."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def list_pages(api: Api, path: str, params: dict[str, Any] | None = None, size: int | None = None) -> Iterator[JSON]:
    """A list page by page (`size` items each, PAGE_SIZE by default); the last page carries the list's
    resourceVersion.

    A continue token can expire while a long list is read (410 Expired). As client-go's pager does, the
    list goes on with the token the server offers, from a newer snapshot (a warning says so), or without
    one is read again once, whole, skipping what the pages before gave: no object twice, none lost.
    """
    params = {**(params or {}), "limit": size or PAGE_SIZE}
    after: str | None = None  # the last object given, once a page was given
    warning: str | None = None
    while True:
        try:
            page = api.get(path, params)
        except errors.GoneError as exc:
            if "continue" not in params or exc.reason != "Expired" or warning:
                raise
            if exc.continue_token:
                warning = f"the list of {path} changed while it was read: the rest is from a newer snapshot"
                params["continue"] = exc.continue_token
            else:
                warning = f"the list of {path} expired while it was read: read again, from a newer snapshot"
                params = {k: v for k, v in params.items() if k not in ("limit", "continue")}
            continue
        items = page.get("items") or []
        if after is not None and "continue" not in params:  # a whole list read again: skip what was given
            page["items"] = items = [o for o in items if _key(o) > after]
        if warning:
            page[WARNINGS] = [warning]
        if items:
            after = _key(items[-1])
        token = (page.get("metadata") or {}).get("continue")
        yield page
        del page, items  # not held while the next page is read: a long list holds one page at a time
        if not token:
            return
        params = {k: v for k, v in params.items() if k not in _SNAPSHOT}  # the token names the snapshot
        params["continue"] = token


def list_all(api: Api, path: str, params: dict[str, Any] | None = None) -> JSON:
    """A whole list, read page by page; returns the last page with every item."""
    items: list[JSON] = []
    for page in list_pages(api, path, params):
        items.extend(page.get("items") or [])
    page["items"] = items
    return page
