"""kubectl-style durations: `5`, `500ms`, `15s`, `1m30s`, `2h`.

One parser serves `--request-timeout`, `wait --timeout` and the `olderThan`
operator of status rules, so they accept the same text.
"""

from __future__ import annotations

import re

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse(text: str) -> float | None:
    """Seconds in `text`, a bare number of seconds or Go duration units; None when malformed."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)
