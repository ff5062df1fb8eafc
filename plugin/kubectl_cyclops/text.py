"""Values as one line of text: shared by status reasons (evaluation) and table cells (formats)."""

from __future__ import annotations

from typing import Any

NONE = "<none>"


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{k}={scalar(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(scalar(v) for v in value)
    return str(value)


def plain(value: Any) -> str:
    """A value as one line of text: lists joined with `,`, maps as `k=v`, nothing as <none>."""
    return NONE if value is None or value in ("", [], {}) else scalar(value)


def condition_line(c: dict[str, Any], message: bool = True) -> str:
    """A status condition as `Type=Status (Reason): message`."""
    line = f"{c.get('type')}={c.get('status')}"
    if c.get("reason"):
        line += f" ({c['reason']})"
    if message and c.get("message"):
        line += f": {c['message']}"
    return line
