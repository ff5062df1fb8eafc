"""The docs: every flag, exit code and formatter documented; every relative link and anchor resolving; the
README a front door of at most 250 lines; no word about how the project was developed; tox running what make runs.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import click
import pytest

from kubectl_cyclops import cli
from kubectl_cyclops.errors import ExitCode
from kubectl_cyclops.formats import FORMATTERS

ROOT = Path(__file__).parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _text(name: str) -> str:
    return (ROOT / name).read_text()


@pytest.mark.parametrize("command", sorted(cli.cli.commands))
def test_every_flag_is_documented(command: str) -> None:
    reference = _text("docs/commands.md")
    for param in cli.cli.commands[command].params:
        if isinstance(param, click.Option):
            for flag in param.opts:
                assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", reference), flag


def test_every_exit_code_is_documented() -> None:
    table = _text("docs/exit-codes.md")
    for code in ExitCode:
        assert f"| {int(code)} |" in table, code


def test_every_format_is_documented() -> None:
    reference = _text("docs/field-maps.md")
    for name in FORMATTERS:
        assert f"`{name}`" in reference, name


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", path.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


def _broken(doc: Path) -> list[str]:
    """The relative links of a Markdown file (outside code blocks) whose file or heading anchor does not exist."""
    broken = []
    for target in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (path.suffix != ".md" or anchor not in _anchors(path)):
            broken.append(f"{target}: no such anchor")
    return broken


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(doc: Path) -> None:
    assert not _broken(doc)


def test_the_link_check_finds_a_broken_link_and_anchor(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# Top\n\n## `wait`: Two words\n\n[ok](#wait-two-words) [x](#nope) [y](b.md) [z](a.md#top)\n")
    assert _broken(doc) == ["#nope: no such anchor", "b.md: no such file"]


def test_the_readme_is_a_front_door() -> None:
    lines = _text("README.md").splitlines()
    assert len(lines) <= 250, len(lines)
    for heading in ("## Install", "## Try it on your cluster", "## From a clone", "## Documentation"):
        assert heading in lines, heading


def test_no_doc_speaks_of_how_the_project_was_developed() -> None:
    for doc in DOCS:
        for word in ("session", "this machine", "measured before", "what changed"):
            assert word not in doc.read_text().lower(), f"{doc.relative_to(ROOT)}: {word!r}"


def test_tox_runs_what_make_runs() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    envs = [e.strip() for e in tox["tox"]["env_list"].split(",")]
    assert envs == ["lint", "unit", "e2e"]
    for env in envs:
        assert tox[f"testenv:{env}"]["commands"].split()[:3] == ["make", env, "VENV={envdir}"], env
