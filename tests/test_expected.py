"""Pinned output: every recorded scenario in every format, compared with a reviewed file.

Regenerate with `pytest tests/test_expected.py --update-expected` and review the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.replay import load, scenarios

EXPECTED = Path(__file__).parent / "expected"
FORMATS = {"table": [], "wide": ["-o", "wide"], "json": ["-o", "json"]}
# wait-one-of-many and wait-pods-of-one are there to count evaluations and assemblies (test_watch.py): their
# 500 and 100 Jobs would pin megabytes of output
COUNTING = {"wait-one-of-many", "wait-pods-of-one"}
SHOWN = [s for s in scenarios() if "--watch" not in load(s)["argv"] and s not in COUNTING]
# `wait -f` reports how long each object took: in a replay that is the replay's own (varying) pace, so the
# pinned output shows where a time is, not its value.
_SECONDS = re.compile(r"(?<= )\d+\.\ds(?= )|(?<=\"seconds\": )[0-9.]+")


def _timeless(name: str, text: str) -> str:
    return _SECONDS.sub("T", text) if "-f" in load(name)["argv"] else text


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", SHOWN)
def test_output_is_as_pinned(replay, request: pytest.FixtureRequest, name: str, fmt: str) -> None:
    result, _ = replay(name, *FORMATS[fmt])
    got = _timeless(name, f"exit {result.exit_code}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}")
    path = EXPECTED / f"{name}.{fmt}"
    if request.config.getoption("--update-expected"):
        path.write_text(got)
    assert path.exists(), f"{path} is missing: run pytest {__file__} --update-expected"
    assert got == path.read_text()
