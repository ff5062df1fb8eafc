"""Rendering: details as a table for people, or as stable JSON/YAML documents for scripts.

Pure functions of (details, now, output stream). Table cells are escaped so a
value cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, TextIO

import yaml
from tabulate import tabulate

from .details import Details, Item, event_time
from .fieldmaps import Field
from .formats import NONE, age, human_duration, parse_time

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """Terminal control characters as visible escapes: \\x1b[31m cannot colour anything."""
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return _CONTROL.sub(lambda m: named.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {escape(str(k)): _clean(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- documents


def _fields_json(item: Item, now: datetime) -> dict[str, Any]:
    return {f.name: f.json(f.extract(item.obj), now) for f in item.fields}


def _item_json(item: Item, now: datetime) -> dict[str, Any]:
    return {
        "apiVersion": item.resource.api_version,
        "kind": item.resource.kind,
        "name": item.name,
        "namespace": item.namespace,
        "status": item.status,
        "fields": _fields_json(item, now),
    }


def _event_json(e: dict[str, Any]) -> dict[str, Any]:
    source = e.get("source") or {}
    return {
        "type": e.get("type"),
        "reason": e.get("reason"),
        "message": e.get("message"),
        "count": e.get("count") or (e.get("series") or {}).get("count") or 1,
        "firstTimestamp": e.get("firstTimestamp") or e.get("eventTime"),
        "lastTimestamp": event_time(e) or None,
        "source": source.get("component") or e.get("reportingComponent") or None,
    }


def document(details: Details, now: datetime) -> dict[str, Any]:
    """The stable machine-readable form (README: JSON output)."""
    item = details.item
    meta = item.obj["metadata"]
    head = _item_json(item, now)
    fields = head.pop("fields")  # it follows the metadata in the document
    return {
        **head,
        "uid": meta.get("uid"),
        "created": meta.get("creationTimestamp"),
        "labels": meta.get("labels") or {},
        "owners": [
            {"kind": o.get("kind"), "name": o.get("name"), "controller": bool(o.get("controller"))}
            for o in meta.get("ownerReferences") or []
        ],
        "fields": fields,
        "related": {rel.name: [_item_json(i, now) for i in items] for rel, items in details.related},
        "events": [_event_json(e) for e in details.events],
        "warnings": list(details.warnings),
    }


def write_json(docs: list[dict[str, Any]] | dict[str, Any], out: TextIO) -> None:
    json.dump(docs, out, indent=2, ensure_ascii=False)
    out.write("\n")


def write_yaml(docs: list[dict[str, Any]] | dict[str, Any], out: TextIO) -> None:
    yaml.safe_dump(docs, out, sort_keys=False, allow_unicode=True, default_flow_style=False)


# ---------------------------------------------------------------- tables


def _visible(fields: tuple[Field, ...], wide: bool) -> list[Field]:
    return [f for f in fields if not f.json_only and (wide or not f.wide)]


def _cell(f: Field, item: Item, now: datetime) -> str:
    return f.table(_clean(f.extract(item.obj)), now)


def _header(details: Details, now: datetime) -> list[tuple[str, str]]:
    item = details.item
    meta = item.obj["metadata"]
    owners = ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in meta.get("ownerReferences") or [])
    rows = [("Name", meta["name"])]
    if item.resource.namespaced:
        rows.append(("Namespace", meta.get("namespace") or NONE))
    rows += [
        ("Kind", f"{item.resource.kind} ({item.resource.api_version})"),
        ("Status", item.status),
        ("Age", age(meta.get("creationTimestamp"), now)),
        (
            "Labels",
            ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or NONE,
        ),
        ("Owner", owners or NONE),
    ]
    return [(k, escape(v)) for k, v in rows]


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def table(details: Details, now: datetime, wide: bool, out: TextIO) -> None:
    item = details.item
    rows = _header(details, now)
    for f in _visible(item.fields, wide):
        value = _cell(f, item, now)
        if f.omit_empty and value == NONE:
            continue
        rows.append((f.title, value))
    out.write(tabulate([(f"{k}:", v) for k, v in rows], tablefmt="plain", disable_numparse=True))
    out.write("\n")
    for rel, items in details.related:
        out.write(f"\n{rel.title}:")
        if not items:
            out.write(f" {NONE}\n")
            continue
        fields = _visible(rel.fields, wide)
        # Related objects share the object's namespace unless the map reads theirs from it (a PV's claim).
        show_ns = items[0].resource.namespaced and rel.ref_namespace is not None
        headers = ["NAME", *(["NAMESPACE"] if show_ns else []), "STATUS", *(f.title.upper() for f in fields)]
        body = []
        for i in items:
            ns = [i.namespace or NONE] if show_ns else []
            body.append([escape(i.name), *ns, i.status, *(_cell(f, i, now) for f in fields)])
        out.write(f" {len(items)}\n")
        out.write(_indent(tabulate(body, headers=headers, tablefmt="plain", disable_numparse=True)) + "\n")
    out.write("\nEvents:")
    if not details.events:
        out.write(f" {NONE}\n")
    else:
        body = []
        for e in details.events:
            ev = _event_json(e)
            when = parse_time(ev["lastTimestamp"])
            seen = human_duration((now - when).total_seconds()) if when else NONE
            count = f" (x{ev['count']})" if ev["count"] and ev["count"] > 1 else ""
            body.append(
                [
                    ev["type"] or NONE,
                    ev["reason"] or NONE,
                    seen + count,
                    ev["source"] or NONE,
                    escape(ev["message"] or ""),
                ]
            )
        out.write(
            "\n"
            + _indent(
                tabulate(
                    body, headers=["TYPE", "REASON", "AGE", "FROM", "MESSAGE"], tablefmt="plain", disable_numparse=True
                )
            )
            + "\n"
        )
