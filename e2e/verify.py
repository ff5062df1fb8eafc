"""Reading `kubectl describe` and plugin tables, for comparing the plugin with kubectl."""

from __future__ import annotations

import re


def describe_fields(text: str) -> dict[str, str]:
    """Top-level `Key:  value` lines of kubectl describe output."""
    fields = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z][A-Za-z ]*):\s*(.*)$", line)
        if m:
            fields.setdefault(m.group(1).strip(), m.group(2).strip())
    return fields


def describe_block(text: str, title: str) -> dict[str, str]:
    """The indented `Key:  value` lines under a `Title:` line of kubectl describe (a PV's Source)."""
    m = re.search(rf"^{re.escape(title)}:\n((?:[ \t]+.*\n?)+)", text, re.M)
    assert m, f"no {title} block in:\n{text}"
    return describe_fields("\n".join(line.strip() for line in m.group(1).splitlines()))


def pod_statuses(describe_text: str) -> dict[str, int]:
    """`Pods Statuses: 0 Active (0 Ready) / 1 Succeeded / 0 Failed` as numbers."""
    m = re.search(r"Pods Statuses:\s+(\d+) Active \((\d+) Ready\) / (\d+) Succeeded / (\d+) Failed", describe_text)
    assert m, f"no Pods Statuses line in:\n{describe_text}"
    return dict(zip(("active", "ready", "succeeded", "failed"), map(int, m.groups()), strict=True))


def table_rows(text: str) -> dict[str, str]:
    """The `Title:  value` rows of a plugin table's first block."""
    rows = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        m = re.match(r"^([^:\s][^:]*):\s+(.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


def section(text: str, title: str) -> list[list[str]]:
    """The rows of a related-objects section (`Pods: 2` and its table), header row first."""
    m = re.search(rf"^{re.escape(title)}: (\d+)\n((?:  .*\n?)+)", text, re.M)
    if not m:
        return []
    return [line.split() for line in m.group(2).splitlines()]


def describe_container(text: str, name: str) -> dict[str, str]:
    """One container of `kubectl describe pod`: its `State`, `Last State` and `Restart Count`, and the Reason,
    Exit Code and Message under each state as `State.Reason`, `Last State.Exit Code`, ..."""
    m = re.search(rf"^  {re.escape(name)}:\n((?:    .*\n?)+)", text, re.M)
    assert m, f"no container {name} in:\n{text}"
    out: dict[str, str] = {}
    under = ""
    for line in m.group(1).splitlines():
        top = re.match(r"^    ([A-Za-z][A-Za-z ]*):\s*(.*)$", line)
        if top:
            under = top.group(1) if top.group(1) in ("State", "Last State") else ""
            out[top.group(1)] = top.group(2).strip()
            continue
        sub = re.match(r"^      ([A-Za-z][A-Za-z ]*):\s*(.*)$", line)
        if sub and under:
            out[f"{under}.{sub.group(1)}"] = sub.group(2).strip()
    return out
