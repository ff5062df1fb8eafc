"""`wait -f`: reading manifests, and waiting on every object they name over recorded streams.

tests/record.py (record_manifest_waits) recorded two waits on a real cluster:
twenty objects of every built-in kind, one of them a Job resumed once the
watches were open, and a directory with a Job whose pod cannot pull its image.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import xmlschema
import yaml

from kubectl_cyclops import errors
from kubectl_cyclops.errors import ExitCode
from kubectl_cyclops.manifests import Manifest, read
from tests.conftest import one_line

HERE = Path(__file__).parent
HEALTHY = HERE / "manifests" / "healthy.yaml"
JUNIT = xmlschema.XMLSchema(HERE / "junit" / "junit.xsd")


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_several_documents_json_and_lists_are_read_in_order(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n---\n"
           "apiVersion: batch/v1\nkind: Job\nmetadata: {name: two, namespace: ci}\n")  # fmt: skip
    items = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n}} for n in ("three", "four")]
    _write(tmp_path, "b.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    _write(tmp_path, "notes.txt", "not a manifest")
    got = read([str(tmp_path)], False, io.StringIO())
    assert got == [
        Manifest(f"{tmp_path}/a.yaml#1", "v1", "ConfigMap", "one", None),
        Manifest(f"{tmp_path}/a.yaml#2", "batch/v1", "Job", "two", "ci"),
        Manifest(f"{tmp_path}/b.json items[0]", "apps/v1", "Deployment", "three", None),
        Manifest(f"{tmp_path}/b.json items[1]", "apps/v1", "Deployment", "four", None),
    ]
    assert [m.group for m in got] == ["", "batch", "apps", "apps"]


def test_a_directory_is_read_recursively_only_with_r(tmp_path: Path) -> None:
    _write(tmp_path, "top.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: top}\n")
    _write(tmp_path, "nested/deep.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n")
    assert [m.name for m in read([str(tmp_path)], False, io.StringIO())] == ["top"]
    assert [m.name for m in read([str(tmp_path)], True, io.StringIO())] == ["deep", "top"]


def test_stdin_and_files_together_and_an_object_named_twice_is_waited_for_once(tmp_path: Path) -> None:
    doc = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
    path = _write(tmp_path, "s.yaml", doc)
    got = read(["-", str(path)], False, io.StringIO(doc))
    assert got == [Manifest("-", "v1", "Secret", "s", None)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\n",
            'M: Job (generateName "migrate-") has no name: wait needs objects with names',
        ),
        ("kind: Job\nmetadata: {name: x}\n", "M: an object needs apiVersion and kind"),
        ("- a\n- b\n", "M: expected an object with apiVersion and kind, got list"),
        ("a: [b\n", "M: not YAML or JSON: "),
    ],
    ids=["generate-name", "no-api-version", "not-an-object", "not-yaml"],
)
def test_a_manifest_wait_cannot_use_is_a_usage_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "m.yaml", text)
    with pytest.raises(errors.UsageError) as caught:
        read([str(path)], False, io.StringIO())
    assert caught.value.message.startswith(message.replace("M", str(path), 1))


def test_urls_missing_paths_and_empty_manifests_are_usage_errors(tmp_path: Path) -> None:
    for paths, message in (
        (["https://example.com/app.yaml"], "-f https://example.com/app.yaml: URLs are not read"),
        ([str(tmp_path / "nope.yaml")], f'the path "{tmp_path / "nope.yaml"}" does not exist'),
        ([str(_write(tmp_path, "empty.yaml", "---\n"))], f"no objects in {tmp_path / 'empty.yaml'}"),
    ):
        with pytest.raises(errors.UsageError) as caught:
            read(paths, False, io.StringIO())
        assert caught.value.message.startswith(message)


def _scopes(requests: list[str]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """LIST, LIST at least as new as a version (a sync), and WATCH requests by scope (path and selectors,
    without paging or watch parameters)."""

    def scope(request: str) -> str:
        path, _, query = request.removeprefix("WATCH ").split(" ")[1].partition("?")
        kept = [p for p in query.split("&") if p and p.split("=")[0] not in {"limit", "continue", "watch",
                "resourceVersion", "allowWatchBookmarks", "timeoutSeconds"}]  # fmt: skip
        return path + ("?" + "&".join(kept) if kept else "")

    reads = [r for r in requests if r.startswith("GET ") and not r.startswith(("GET /api ", "GET /apis "))]
    lists = Counter(scope(r) for r in reads if "(NotOlderThan " not in r)
    synced = Counter(scope(r) for r in reads if "(NotOlderThan " in r)
    watches = Counter(scope(r) for r in requests if r.startswith("WATCH "))
    return lists, synced, watches


def test_twenty_objects_are_one_list_and_one_watch_per_scope_with_no_get_of_an_object(replay) -> None:
    """And before the verdict, each scope behind the newest event is listed once more (Informer.sync)."""
    result, api = replay("wait-manifest")
    assert result.exit_code == 0, result.stderr
    names = [d["metadata"]["name"] for d in _documents(HEALTHY)]  # type: ignore[index]
    assert len(names) == 20
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["OBJECT", "NAMESPACE", "STATUS", "TIME", "REASON"]
    assert [r.split()[0].split("/", 1)[1] for r in rows[1:]] == names
    assert all(re.search(r"\s healthy\s+\d+\.\ds ", r) for r in rows[1:]), result.stdout
    assert re.search(r"^jobs.batch/resumed\s+rec\s+healthy\s+\d+\.\ds\s+Complete=True", result.stdout, re.M)
    lists, synced, watches = _scopes(api.requests)
    assert lists, api.requests
    assert max(lists.values()) == 1, lists
    assert set(synced) < set(lists), "the scope that had the newest event is not behind: not listed again"
    assert max(synced.values()) == 1, synced
    assert watches, api.requests  # the Job resumed after the watches opened
    assert set(watches) <= set(lists), watches
    assert max(watches.values()) == 1, watches
    gets = [s for s in lists if any(s.split("?")[0].endswith(f"/{n}") for n in names)]
    assert not gets, f"objects read by GET: {gets}"


def test_json_is_every_details_document_and_the_summary(replay) -> None:
    result, _ = replay("wait-manifest", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["items"]) == len(doc["summary"]) == 20
    assert [i["name"] for i in doc["items"]] == [s["object"].split("/", 1)[1] for s in doc["summary"]]
    resumed = next(s for s in doc["summary"] if s["object"] == "jobs.batch/resumed")
    assert (resumed["namespace"], resumed["status"]) == ("rec", "healthy")
    assert resumed["seconds"] > 0
    assert {s["namespace"] for s in doc["summary"] if s["object"].startswith("persistentvolumes/")} == {None}


def test_a_stuck_job_fails_fast_with_its_details_then_the_summary(replay, tmp_path: Path) -> None:
    report = tmp_path / "wait.xml"
    result, _ = replay("wait-manifest-fails", "--junit", str(report))
    reason = 'pod pull-fails-[a-z0-9]{5}: container main: ImagePullBackOff \\(Back-off pulling image "app:nope"\\)'
    line = one_line_of(result, ExitCode.WAIT_FAILED)
    assert re.fullmatch(f"error: 1 of 2 failed: jobs.batch/pull-fails -n rec failed: {reason}", line), line
    details, summary = result.stdout.rsplit("\n\n", 1)
    assert details.startswith("Name:             pull-fails\n")
    assert "main: waiting (ImagePullBackOff)" in details
    rows = [r.split(None, 4) for r in summary.splitlines()]
    assert [r[:3] for r in rows] == [
        ["OBJECT", "NAMESPACE", "STATUS"],
        ["jobs.batch/pull-fails", "rec", "failed"],
        ["configmaps/settings", "rec", "healthy"],
    ]
    JUNIT.validate(str(report))
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failed, passed = suite.findall("testcase")
    assert (failed.get("name"), failed.get("classname"), passed.get("name")) == (
        "jobs.batch/pull-fails", "rec", "configmaps/settings"
    )  # fmt: skip
    failure = failed.find("failure")
    assert failure is not None
    assert passed.find("failure") is None
    assert re.fullmatch(f"failed: {reason}", failure.get("message") or "")
    assert "Name:             pull-fails" in (failure.text or "")


def test_a_timeout_report_validates_and_names_what_was_missing(replay, tmp_path: Path) -> None:
    """The stuck Job waited for as progressing, which it never is: a timeout, each object a failure."""
    report = tmp_path / "wait.xml"
    argv = ["wait", "-f", "tests/manifests/stuck", "--for", "progressing", "--timeout", "0", "--junit", str(report)]
    result, _ = replay("wait-manifest-fails", argv=argv)
    assert result.exit_code == ExitCode.WAIT_TIMEOUT
    assert result.stderr.startswith("error: timed out after 0 waiting for progressing: 2 of 2 not progressing: ")
    JUNIT.validate(str(report))
    kinds = [f.get("type") for f in ET.parse(report).getroot().iter("failure")]
    assert kinds == ["timeout", "timeout"]


def test_manifests_from_stdin(replay) -> None:
    argv = ["wait", "-f", "-", "--timeout", "2m"]
    stdin = "".join(p.read_text() + "\n---\n" for p in sorted((HERE / "manifests" / "stuck").iterdir()))
    result, _ = replay("wait-manifest-fails", argv=argv, stdin=stdin)
    assert result.exit_code == ExitCode.WAIT_FAILED
    assert "jobs.batch/pull-fails" in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["wait", "-f", "tests/manifests/stuck", "job"], "error: -f names the objects: it does not go with KIND"),
        (["wait", "-f", "tests/manifests/stuck", "-l", "a=b"], "error: -f names the objects: it does not go with -l"),
        (["wait", "job", "x", "-R"], "error: -R goes with -f"),
        (["wait"], "error: give KIND [NAME], KIND/NAME, or -f FILE"),
    ],
)
def test_flags_that_do_not_go_with_f_are_usage_errors(replay, argv: list[str], message: str) -> None:
    result, _ = replay("wait-manifest-fails", argv=argv)
    assert one_line(result, ExitCode.USAGE) == message


def test_a_kind_the_server_does_not_serve_names_the_document(replay, tmp_path: Path) -> None:
    path = _write(tmp_path, "m.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n---\n"
                  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")  # fmt: skip
    result, _ = replay("wait-manifest-fails", argv=["wait", "-f", str(path)])
    assert one_line(result, ExitCode.UNKNOWN_KIND) == (
        f'error: {path}#2: the server doesn\'t have a resource type "Widget" in "example.com/v1" '
        "(see: kubectl api-resources)"
    )


def one_line_of(result, code: int) -> str:  # type: ignore[no-untyped-def]
    """The single stderr line of a command that also printed to stdout."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _documents(path: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for doc in yaml.safe_load_all(path.read_text()):
        out += doc["items"] if doc.get("kind") == "List" else [doc]
    return out
