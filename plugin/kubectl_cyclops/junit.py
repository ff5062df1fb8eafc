"""`wait --junit FILE`: a JUnit XML report, one test case per object, for CI tools that read one.

The form is the one GitLab, Jenkins, Azure Pipelines and pytest share:
`<testsuites>` holding one `<testsuite>` with a `<testcase>` per object
(`classname` its namespace, `name` kind/name, `time` in seconds), and a
`<failure>` in a case that did not reach the status asked for: its message is
the status and reason, its text the object's details as the table shows them.
"""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from . import errors
from .render import table
from .wait import Entry

SUITE = "kubectl cyclops wait"
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # XML 1.0 has no way to write these


def _safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def report(entries: list[Entry], goal: str, seconds: float, now: datetime) -> ET.Element:
    failures = [e for e in entries if not e.met(goal)]
    root = ET.Element("testsuites", name=SUITE, tests=str(len(entries)), failures=str(len(failures)))
    root.set("time", f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=SUITE, tests=str(len(entries)), failures=str(len(failures)))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    suite.set("time", f"{seconds:.3f}")
    suite.set("timestamp", now.replace(microsecond=0).isoformat())
    for e in entries:
        case = ET.SubElement(suite, "testcase", classname=e.namespace or "(cluster)", name=_safe(e.label))
        case.set("time", f"{seconds if e.seconds is None else e.seconds:.3f}")
        if e.met(goal):
            continue
        kind = "failed" if e.failed(goal) else "timeout"
        failure = ET.SubElement(case, "failure", type=kind, message=_safe(f"{e.state}: {e.reason}"))
        text = io.StringIO()
        if e.details is not None:
            table(e.details, now, False, text)
        else:
            text.write(f"{e.label} not found\n")
        failure.text = _safe(text.getvalue())
    return root


def write(path: str, entries: list[Entry], goal: str, seconds: float, now: datetime) -> None:
    """Write the report atomically: a reader never sees half a file."""
    tree = ET.ElementTree(report(entries, goal, seconds, now))
    ET.indent(tree)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        tree.write(partial, encoding="utf-8", xml_declaration=True)
        os.replace(partial, target)
    except OSError as exc:
        raise errors.UsageError(f"--junit {path}: cannot write it: {exc.strerror or exc}") from None
