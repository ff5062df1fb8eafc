"""Rendering: details as a table for people, or as stable JSON/YAML documents for scripts.

Rendering decides, in one place (`visible`), which fields a view shows, and formats
their values there: a cell's text and a field's JSON value come from its format
(formats.py), applied to the value evaluation read. It lays out what collection
evaluated and escapes it: table cells
are escaped line by line so a value cannot move the cursor or recolour the
terminal. Documents are written by C encoders (orjson, libyaml), one at a
time, so a long list streams out as it is read.

Tables are laid out by `columns()`, which writes what tabulate's "plain" format
writes (tests/test_columns.py compares the two on random tables). tabulate
itself spent half of a 3,000-object table classifying cells as numbers, by
parsing each with float(), even with number parsing turned off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, BinaryIO, TextIO

import orjson

from .details import Details, Evaluated, event_time
from .durations import human_duration, parse_time
from .errors import escape
from .fieldmaps import Field, shows
from .formats import FORMATTERS, age, timestamp
from .text import NONE

# ---------------------------------------------------------------- fields


def visible(fields: tuple[Field, ...], view: str) -> list[Field]:
    """The fields a view (table, wide, json) shows: the one place that decides it."""
    return [f for f in fields if shows(f, view)]


_Plan = list[tuple[Field, Callable[[Any, datetime], Any]]]
_plans: dict[tuple[int, str], tuple[tuple[Field, ...], _Plan]] = {}


def _plan(fields: tuple[Field, ...], view: str) -> _Plan:
    """The fields a view shows, each with its format's function for that view, worked out once per field list."""
    key = (id(fields), view)
    cached = _plans.get(key)
    if cached is not None and cached[0] is fields:
        return cached[1]
    plan: _Plan = []
    for f in visible(fields, view):
        formatter = FORMATTERS[f.format]
        side = formatter.json if view == "json" else formatter.table
        plan.append((f, partial(side, keys=f.args) if formatter.takes_args else side))
    _plans[key] = (fields, plan)  # the tuple is kept, so its id is not reused while the entry lives
    return plan


def json_fields(item: Evaluated, now: datetime) -> dict[str, Any]:
    """The JSON value of each field the JSON view shows, by its format."""
    values = item.evaluation.values
    return {f.name: fmt(values.of(f), now) for f, fmt in _plan(item.fields, "json")}


def field_cells(item: Evaluated, view: str, now: datetime) -> list[tuple[Field, str]]:
    """Each field a table view shows, with its cell: one line, or several, each escaped."""
    values = item.evaluation.values
    out = []
    for f, fmt in _plan(item.fields, view):
        text = fmt(values.of(f), now)
        out.append((f, escape(text) if isinstance(text, str) else "\n".join(escape(line) for line in text)))
    return out


# ---------------------------------------------------------------- documents


def _item_json(item: Evaluated, now: datetime) -> dict[str, Any]:
    return {
        "apiVersion": item.resource.api_version,
        "kind": item.resource.kind,
        "name": item.name,
        "namespace": item.namespace,
        "status": item.evaluation.status,
        "statusReason": item.evaluation.reason,
        "deletionTimestamp": item.obj["metadata"].get("deletionTimestamp"),
        "fields": json_fields(item, now),
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
    """The stable machine-readable form (docs/output.md)."""
    item = details.subject
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


def deleted(details: Details, output: str, out: TextIO) -> None:
    """An object of a watched list that is gone: one line in tables, in JSON and YAML a document saying so."""
    item = details.subject
    if output in ("json", "yaml"):
        doc = {
            "apiVersion": item.resource.api_version,
            "kind": item.resource.kind,
            "name": item.name,
            "namespace": item.namespace,
            "deleted": True,
        }
        _write(doc, output, out)
        return
    where = f" -n {item.namespace}" if item.namespace else ""
    out.write(f"\n{escape(item.resource.qualified)}/{escape(item.name)}{escape(where)} deleted\n")
    out.flush()


def _write(docs: Iterable[dict[str, Any]] | dict[str, Any], output: str, out: TextIO) -> None:
    """One document or a list of them, as JSON (bytes, straight to the buffer) or YAML."""
    if output == "json":
        out.flush()
        write_json(docs, out.buffer)
        out.buffer.flush()
    else:
        write_yaml(docs, out)


_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def write_json(docs: Iterable[dict[str, Any]] | dict[str, Any], out: BinaryIO) -> None:
    """One document, or a JSON array written one element at a time (`[]` when empty)."""
    if isinstance(docs, dict):
        out.write(orjson.dumps(docs, option=_JSON_OPTIONS) + b"\n")
        return
    sep = b"[\n  "
    for doc in docs:
        out.write(sep + orjson.dumps(doc, option=_JSON_OPTIONS).replace(b"\n", b"\n  "))
        sep = b",\n  "
    out.write(b"[]\n" if sep == b"[\n  " else b"\n]\n")


def write_yaml(docs: Iterable[dict[str, Any]] | dict[str, Any], out: TextIO) -> None:
    """The same documents as YAML (libyaml's emitter); a list is a sequence written item by item."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    def dump(data: Any) -> None:
        yaml.dump(data, out, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)

    if isinstance(docs, dict):
        dump(docs)
        return
    empty = True
    for doc in docs:
        dump([doc])
        empty = False
    if empty:
        out.write("[]\n")


# ---------------------------------------------------------------- tables


def _header(details: Details, now: datetime) -> list[tuple[str, str]]:
    item = details.subject
    meta = item.obj["metadata"]
    owners = ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in meta.get("ownerReferences") or [])
    rows = [("Name", meta["name"])]
    if item.resource.namespaced:
        rows.append(("Namespace", meta.get("namespace") or NONE))
    rows += [
        ("Kind", f"{item.resource.kind} ({item.resource.api_version})"),
        ("Status", item.evaluation.status),
        ("Status Reason", item.evaluation.reason or NONE),
        *([("Terminating", f"since {timestamp(deleted, now)}")] if (deleted := meta.get("deletionTimestamp")) else []),
        ("Age", age(meta.get("creationTimestamp"), now)),
        ("Labels", ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or NONE),
        ("Owner", owners or NONE),
    ]
    return [(k, escape(v)) for k, v in rows]


def _empty(details: Details, section: str) -> str:
    """An empty section: `<none>`, or why it could not be read (`<none> (forbidden: ...)`)."""
    why = details.unread.get(section)
    return NONE if why is None else f"{NONE} ({escape(why)})"


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def columns(rows: Sequence[Sequence[str]], headers: Sequence[str] = ()) -> str:
    """Rows of text cells in left-aligned columns two spaces apart, as tabulate's "plain" format lays them
    out: cells stripped, a header at least two wider than its title, no trailing spaces. When a cell has
    several lines they stack in its column (and, as there, a row of empty cells then takes no line).

    The last column is never padded (its padding would be stripped), and a table without multi-line
    cells lays out each row as one line: a 3,000-object table is mostly these two cases.
    """
    multiline = any("\n" in c for row in rows for c in row)
    cells = [[c.strip().splitlines() for c in row] if multiline else [[c.strip()] for c in row] for row in rows]
    widths = [len(h) + 2 for h in headers] or [0] * max((len(r) for r in cells), default=0)
    for row in cells:
        for i, lines in enumerate(row):
            for text in lines:
                if len(text) > widths[i]:
                    widths[i] = len(text)
    lead = widths[:-1]

    def line(texts: Sequence[str]) -> str:
        padded = [t.ljust(w) for t, w in zip(texts, lead, strict=False)]
        padded.append(texts[-1] if texts else "")
        return "  ".join(padded).rstrip()

    out = [line(headers)] if headers else []
    if len(widths) == 2 and not headers:  # a details block: `Title:  value` rows
        width = widths[0]
        for keys, values in cells:
            if len(keys) == len(values) == 1:
                out.append(f"{keys[0].ljust(width)}  {values[0]}".rstrip())
                continue
            for n in range(max(len(keys), len(values))):
                key = keys[n] if n < len(keys) else ""
                out.append(f"{key.ljust(width)}  {values[n] if n < len(values) else ''}".rstrip())
        return "\n".join(out)
    for row in cells:
        if not multiline:
            out.append(line([c[0] for c in row]))
            continue
        for n in range(max(map(len, row), default=0)):
            out.append(line([c[n] if n < len(c) else "" for c in row]))
    return "\n".join(out)


def table(details: Details, now: datetime, wide: bool, out: TextIO) -> None:
    item = details.subject
    rows = _header(details, now)
    for f, value in field_cells(item, "wide" if wide else "table", now):
        if f.omit_empty and value == NONE:
            continue
        rows.append((f.title, value))
    out.write(columns([[f"{k}:", v] for k, v in rows]) + "\n")
    for rel, items in details.related:
        out.write(f"\n{rel.title}:")
        if not items:
            out.write(f" {_empty(details, rel.name)}\n")
            continue
        view = "wide" if wide else "table"
        fields = visible(rel.fields, view)
        # Related objects share the object's namespace unless the map reads theirs from it (a PV's claim).
        show_ns = items[0].resource.namespaced and rel.ref_namespace is not None
        headers = ["NAME", *(["NAMESPACE"] if show_ns else []), "STATUS"]
        headers += [*(["STATUS REASON"] if wide else []), *(f.title.upper() for f in fields)]
        body = []
        for i in items:
            ns = [escape(i.namespace or NONE)] if show_ns else []
            reason = [escape(i.evaluation.reason or NONE)] if wide else []
            body.append([escape(i.name), *ns, i.evaluation.status, *reason, *(c for _, c in field_cells(i, view, now))])
        out.write(f" {len(items)}\n")
        out.write(_indent(columns(body, headers)) + "\n")
    out.write("\nEvents:")
    if not details.events:
        out.write(f" {_empty(details, 'events')}\n")
        return
    body = []
    for e in details.events:
        ev = _event_json(e)
        when = parse_time(ev["lastTimestamp"])
        seen = human_duration((now - when).total_seconds()) if when else NONE
        count = f" (x{ev['count']})" if ev["count"] and ev["count"] > 1 else ""
        cells = [ev["type"] or NONE, ev["reason"] or NONE, seen + count, ev["source"] or NONE, ev["message"] or ""]
        body.append([escape(str(c)) for c in cells])
    out.write("\n" + _indent(columns(body, ["TYPE", "REASON", "AGE", "FROM", "MESSAGE"])) + "\n")


def emit(
    pages: Iterable[list[Details]],
    output: str,
    single: bool,
    now: datetime,
    out: TextIO,
    warn: Callable[[str], None],
) -> int:
    """Print details in `output` (table, wide, json, yaml): one document when `single`, else a list.

    `pages` are complete: each is read and evaluated before it is printed, so an error
    reading one object stops the output before it starts, and a list stops between pages.
    Each object's warnings go to `warn` (escaped) as it is printed. Returns how many were printed.
    """
    count = 0

    def warned() -> Iterable[Details]:
        nonlocal count
        for page in pages:
            for d in page:
                for warning in d.warnings:
                    warn(f"Warning: {escape(warning)}")
                count += 1
                yield d

    if output in ("json", "yaml"):
        docs = (document(d, now) for d in warned())
        _write(next(docs) if single else docs, output, out)
        return count
    for d in warned():
        if count > 1:
            out.write("\n")
        table(d, now, output == "wide", out)
    out.flush()
    return count
