"""Shell completion: kubectl's plugin protocol (kubectl_complete-cyclops) and Click's own."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kubectl_cyclops import cli


def test_kubectl_plugin_completion_protocol(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr("sys.argv", ["kubectl_complete-cyclops", "__complete", "details", "--out"])
    cli.complete()
    assert capsys.readouterr().out.splitlines() == ["--output", ":4"]
    monkeypatch.setattr("sys.argv", ["kubectl_complete-cyclops", "__complete", "details", "-o", ""])
    cli.complete()
    assert capsys.readouterr().out.splitlines() == ["table", "wide", "json", "yaml", ":4"]
    monkeypatch.setattr("sys.argv", ["kubectl_complete-cyclops", "__complete", "ki"])
    cli.complete()
    assert capsys.readouterr().out.splitlines() == ["kinds", ":4"]


def test_bash_completion_script_and_answers() -> None:
    script = CliRunner().invoke(
        cli.cli, [], prog_name="kubectl-cyclops", env={cli.COMPLETE_VAR: "bash_source"}, complete_var=cli.COMPLETE_VAR
    )
    assert "complete -o nosort -F" in script.output
    answer = CliRunner().invoke(
        cli.cli,
        [],
        env={cli.COMPLETE_VAR: "bash_complete", "COMP_WORDS": "kubectl-cyclops det", "COMP_CWORD": "1"},
        complete_var=cli.COMPLETE_VAR,
    )
    assert answer.output.strip() == "plain,details"
