"""The field map reference in docs/field-maps.md, from schema/fieldmap-v1.json (run by cog; `make lint` checks it).

Each table lists one part of the format: its keys, whether they are required, their type and the
schema's description, so the reference cannot drift from what the loader accepts.
"""

from __future__ import annotations

import json
from typing import Any

from kubectl_cyclops.fieldmaps import SCHEMA

_DOC = json.loads(SCHEMA.read_text())
_DEFS = _DOC["definitions"]
PARTS = {
    "map": ("The top level", _DOC),
    "field": ("A field (`fields[]`; `{include: NAME}` includes a field set instead)", _DEFS["field"]),
    "relation": ("A relation (`related[]`)", _DEFS["relation"]),
    "way": ("A way to find related objects (`via[]`): exactly one key", _DEFS["way"]),
    "rule": ("A status rule (`status.rules[]`)", _DEFS["rule"]),
    "ruleInclude": ("A rule set included in `status.rules[]`", _DEFS["ruleInclude"]),
    "condition": ("A condition (`when`): what it reads, and exactly one operator", _DEFS["condition"]),
    "relatedOperand": ("The values of a relation (`in: {related: …}`)", _DEFS["relatedOperand"]),
    "status": ("The status block (`status`)", _DEFS["status"]),
}


def _type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        names = {
            "expression": "EXPR",
            "identifier": "name",
            "statusName": "status",
            "pathOperand": "{path: EXPR}",
            "relatedOperand": "{related: NAME, path: EXPR, where: …}",
            "ruleOrInclude": "rule or {include: NAME, when: …}",
            "objectOperand": "{path: EXPR} or {parent: EXPR}",
        }
        return names.get(name, name)
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node and len(node["enum"]) > 6:
        return "a format (below)"
    if "enum" in node:
        return " \\| ".join(map(str, node["enum"]))
    if "if" in node:
        return f"{_type(node['else'])} or {_type(node['then'])}"
    kind = node.get("type", "")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if isinstance(kind, list):
        return " \\| ".join(kind)
    return str(kind) or "value"


def keys_table(part: str) -> str:
    """A Markdown table of one part's keys, from the schema."""
    title, node = PARTS[part]
    required = set(node.get("required", []))
    rows = [f"**{title}**", "", "| Key | Type | Meaning |", "| --- | --- | --- |"]
    for key, prop in node["properties"].items():
        text = (prop.get("description") or "").replace("|", "\\|")
        mark = " (required)" if key in required else ""
        rows.append(f"| `{key}`{mark} | {_type(prop)} | {text} |")
    rules = [r["description"] for r in node.get("allOf", []) if "description" in r]
    if rules:
        rows += ["", *(f"- {r[:1].upper()}{r[1:]}." for r in rules)]
    return "\n".join(rows) + "\n\n"


def arity_table() -> str:
    """How many paths each format reads, from the schema's rules."""
    rows = ["| Formats | Paths |", "| --- | --- |"]
    for rule in _DEFS["field"]["allOf"]:
        cond = rule.get("if", {})
        paths = rule.get("then", {}).get("properties", {}).get("paths")
        if not paths:
            continue
        low, high = paths.get("minItems", 1), paths.get("maxItems")
        count = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
        if "not" in cond:
            rows.append(f"| every other format | {count} (`path`) |")
        else:
            names = ", ".join(f"`{n}`" for n in cond["properties"]["format"]["enum"])
            rows.append(f"| {names} | {count} |")
    return "\n".join(rows) + "\n"


def reference() -> str:
    return "".join(keys_table(p) for p in PARTS) + arity_table()
