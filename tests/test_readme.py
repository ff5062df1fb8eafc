"""The README documents every flag of every command, every exit code and every formatter."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from kubectl_cyclops import cli
from kubectl_cyclops.errors import ExitCode
from kubectl_cyclops.formats import FORMATTERS

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("command", sorted(cli.cli.commands))
def test_every_flag_is_documented(command: str) -> None:
    for param in cli.cli.commands[command].params:
        if isinstance(param, click.Option):
            for flag in param.opts:
                assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", README), flag


def test_every_exit_code_is_documented() -> None:
    for code in ExitCode:
        assert f"| {int(code)} |" in README, code


def test_every_format_is_documented() -> None:
    for name in FORMATTERS:
        assert f"`{name}`" in README, name
