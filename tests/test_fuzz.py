"""Bad input, fuzzed: every input gives a valid result or the documented error and exit code, never another
exception; every error line is one line with terminal control characters escaped.

Covered: the field-map loader (any YAML document), the JSONPath front end (any expression string, then
evaluated on a recorded object), the KIND/NAME parser, and duration values (--request-timeout, --timeout).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from kubectl_cyclops import cli, durations, errors, kube, selection
from kubectl_cyclops.errors import ExitCode
from kubectl_cyclops.evaluate import evaluate
from kubectl_cyclops.expr import Expr, ExpressionError
from kubectl_cyclops.fieldmaps import FieldMaps
from tests.replay import ReplayApi, load

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # anything but \t and \n, which end or separate lines
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JOB = next(a["body"] for k, a in load("job-complete")["phases"][0].items() if k.endswith("/jobs/done"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
# Field-map-shaped documents, so the fuzzer reaches past the top-level checks.
KEYS = ["group", "version", "kind", "fields", "related", "status", "name", "path", "paths", "format", "rules", "when"]
mapish = st.recursive(
    scalars | st.sampled_from([".a.b", '.a[?(@.b=="c")].d', "{.x}", "[*]", "text", "healthy", "equals"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=30,
)
expressions = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=".[]?()@=\"'*{}$abc0123 \\-_<>!&|,:", max_size=40),
)


def _assert_one_clean_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert not CONTROL.search(lines[0]), lines[0]
    assert "Traceback" not in text
    return lines[0]


@SETTINGS
@given(doc=st.one_of(documents, mapish))
def test_any_yaml_document_is_a_valid_map_or_a_field_map_error(tmp_path_factory: Any, doc: Any) -> None:
    directory = tmp_path_factory.mktemp("maps")
    (directory / "x.yaml").write_text(yaml.safe_dump(doc))
    refused: errors.FieldMapError | None = None
    try:
        maps = FieldMaps([str(directory)])
    except errors.FieldMapError as exc:
        refused = exc
    if refused is not None:
        assert refused.message.startswith(f"invalid field map {directory / 'x.yaml'}")
        return
    for fmap in maps.all():  # a map that loads evaluates on a real object without raising
        evaluate(fmap, JOB, selection.now())


@SETTINGS
@given(source=expressions)
def test_any_expression_compiles_or_is_an_expression_error_and_evaluates_safely(source: str) -> None:
    try:
        expr = Expr.compile(source)
    except ExpressionError:
        return
    found = expr.values(JOB)
    assert isinstance(found, list)
    expr.value(JOB)


@SETTINGS
@given(kind=st.text(max_size=30), name=st.one_of(st.none(), st.text(max_size=30)))
def test_any_kind_and_name_resolve_or_fail_with_a_documented_code(
    kind: str, name: str | None, tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not kind or kind.startswith("-") or (name or "").startswith("-"):
        return  # an option, not a KIND: Click's business, covered by test_errors
    api = ReplayApi(load("job-complete"))
    monkeypatch.setattr(kube, "connect", lambda *a: api)
    cache = tmp_path_factory.mktemp("cache")
    argv = ["details", kind, *([name] if name is not None else []), "--cache-dir", str(cache)]
    result = CliRunner().invoke(cli.cli, argv, catch_exceptions=False)
    if result.exit_code == 0:
        return
    if "unrecorded request" in result.stderr:
        reject()  # a real kind (`ev`, `no`): reading it needs answers this recording does not have
    assert result.exit_code in (ExitCode.USAGE, ExitCode.UNKNOWN_KIND, ExitCode.NOT_FOUND), result.stderr
    _assert_one_clean_line(result.stderr)


@SETTINGS
@given(text=st.text(max_size=20))
def test_any_duration_parses_or_is_a_usage_error(text: str) -> None:
    seconds = durations.parse(text)
    assert seconds is None or seconds >= 0
    refused: errors.UsageError | None = None
    try:
        selection.parse_timeout(text)
    except errors.UsageError as exc:
        refused = exc
    if refused is not None:
        assert seconds is None
        assert refused.message.startswith("invalid --request-timeout")


@SETTINGS
@given(text=st.text(max_size=20))
def test_any_request_timeout_on_the_command_line_is_accepted_or_one_clean_line(
    text: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any
) -> None:
    if text.startswith("-"):
        return
    api = ReplayApi(load("job-complete"))
    monkeypatch.setattr(kube, "connect", lambda *a: api)
    cache = tmp_path_factory.mktemp("cache")
    argv = ["details", "job", "done", "-n", "rec", "--request-timeout", text, "--cache-dir", str(cache)]
    result = CliRunner().invoke(cli.cli, argv, catch_exceptions=False)
    if result.exit_code == 0:
        return
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert _assert_one_clean_line(result.stderr).startswith("error: invalid --request-timeout")


def test_a_map_from_this_suite_still_loads() -> None:
    """The fuzz directory above is the only source of maps: the CRD map of tests/ loads as it always did."""
    assert FieldMaps([str(Path(__file__).parent / "crd-fieldmaps")]).get("stable.example.com", "CronTab").fields
