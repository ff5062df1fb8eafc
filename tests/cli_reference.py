"""The flag tables of docs/commands.md, generated from the commands' own --help (run by cog; `make lint` checks them).

cog -r docs/commands.md          # rewrite the tables after changing a flag (make fmt does)
cog --check docs/commands.md     # fails when a table no longer matches the code
"""

from __future__ import annotations

import click

from kubectl_cyclops import cli


def _flag(param: click.Option) -> str:
    opts = ", ".join(sorted(param.opts, key=len))
    return opts if param.is_flag else f"{opts} {param.metavar}"


def flags_table(command: str) -> str:
    """A Markdown table of a command's options, in the order --help lists them."""
    rows = ["| Flag | Meaning |", "| --- | --- |"]
    params = [p for p in cli.cli.commands[command].params if isinstance(p, click.Option)]
    for p in params:
        text = (p.help or "").replace("|", "\\|")
        rows.append(f"| `{_flag(p)}` | {text} |")
    rows.append("| `-h, --help` | Show the help and exit. |")
    return "\n".join(rows) + "\n"
