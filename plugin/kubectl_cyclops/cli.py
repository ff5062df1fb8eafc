"""The command line: `kubectl cyclops details KIND [NAME]` and `kubectl cyclops kinds`.

This is the one boundary where typed errors become a single stderr line and an
exit code (README: Exit codes).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import click

from . import __version__, errors
from .errors import ExitCode

FIELD_MAPS_ENV = "KUBECTL_CYCLOPS_FIELD_MAPS"

OUTPUTS = ("table", "wide", "json", "yaml")


def now() -> datetime:
    """The time ages are measured from (tests replaying recordings pin it)."""
    return datetime.now(UTC)


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.CyclopsError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as kubectl does when SIGPIPE ends it.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(ExitCode.BROKEN_PIPE)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("KUBECTL_CYCLOPS_DEBUG"):
                raise
            reason = " ".join(str(exc).split())
            click.echo(
                f"error: unexpected {type(exc).__name__}: {reason} (KUBECTL_CYCLOPS_DEBUG=1 shows a traceback)",
                err=True,
            )
            ctx.exit(ExitCode.ERROR)


def field_map_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--field-maps",
        "field_maps",
        multiple=True,
        metavar="DIR",
        envvar=FIELD_MAPS_ENV,
        type=click.Path(file_okay=False, dir_okay=True),
        help=f"A directory of user field maps; repeatable; also ${FIELD_MAPS_ENV} ({os.pathsep}-separated). "
        "User maps add kinds and override built-in ones.",
    )(f)


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """kubectl's connection flags, spelled as kubectl spells them."""
    options = [
        click.option(
            "--kubeconfig",
            metavar="FILE",
            type=click.Path(dir_okay=False),
            help="The kubeconfig to use (default: $KUBECONFIG, a list as in kubectl, then ~/.kube/config; "
            "in a pod without either, the in-cluster service account).",
        ),
        click.option("--context", metavar="NAME", help="The kubeconfig context (default: the current context)."),
        click.option(
            "--request-timeout",
            metavar="D",
            default="0",
            help="Time limit per API request: 0 (none, the default), seconds (5), or a duration (500ms, 5s, 1m30s).",
        ),
        click.option(
            "--cache-dir",
            metavar="DIR",
            type=click.Path(file_okay=False),
            envvar="KUBECTL_CYCLOPS_CACHE_DIR",
            help="The discovery cache (default: ~/.cache/kubectl-cyclops; also $KUBECTL_CYCLOPS_CACHE_DIR).",
        ),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), f)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="kubectl-cyclops")
def cli() -> None:
    """Everything that matters about a Kubernetes resource and its related objects."""


def split_target(kind: str, name: str | None) -> tuple[str, str | None]:
    """KIND NAME, KIND/NAME, or KIND alone."""
    if "/" in kind:
        if name:
            raise errors.UsageError(f'give either KIND/NAME or KIND NAME, not both ("{kind}" and "{name}")')
        kind, _, name = kind.partition("/")
        if not kind or not name:
            raise errors.UsageError(f'"{kind}/{name}" is not KIND/NAME')
    return kind, name


@cli.command()
@click.argument("kind", metavar="KIND[/NAME]")
@click.argument("name", required=False)
@cluster_options
@click.option(
    "-n",
    "--namespace",
    metavar="NS",
    help="The namespace (default: the context's namespace, else default); ignored for cluster-scoped kinds.",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace (only without NAME).")
@click.option(
    "-l",
    "--selector",
    metavar="SEL",
    help="A label selector in kubectl's syntax, e.g. 'app=web,tier in (a,b)' (only without NAME).",
)
@click.option(
    "-o",
    "--output",
    metavar="FORMAT",
    type=click.Choice(OUTPUTS),
    default="table",
    help="table (the default), wide (adds the fields a map marks wide), json, yaml.",
)
@click.option(
    "-w",
    "--watch",
    is_flag=True,
    help="Keep watching the object, its related objects and its events, and print it again whenever one "
    "changes; Ctrl-C ends (exit 0).",
)
@field_map_option
def details(
    kind: str,
    name: str | None,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
    cache_dir: str | None,
    namespace: str | None,
    all_namespaces: bool,
    selector: str | None,
    output: str,
    watch: bool,
    field_maps: tuple[str, ...],
) -> None:
    """Show the details of KIND NAME (or of every KIND) with its related objects and events.

    \b
    Examples:
      kubectl cyclops details job pi -n batch
      kubectl cyclops details pv/task-pv-volume -o json
      kubectl cyclops details pods -l app=web -A -o wide
    """
    from . import kube, render
    from .details import Collector, Details
    from .discovery import Discovery
    from .fieldmaps import FieldMaps

    kind, name = split_target(kind, name)
    if name and all_namespaces:
        raise errors.UsageError("a resource cannot be retrieved by name across all namespaces")
    if name and selector:
        raise errors.UsageError("name cannot be provided when a selector is specified")
    timeout = kube.parse_timeout(request_timeout)
    maps = FieldMaps(list(field_maps))
    api = kube.connect(kubeconfig, context, timeout)
    discovery = Discovery(api, cache_dir)
    resource = discovery.resolve(kind)
    maps.get(resource.group, resource.kind)  # reject a malformed map before any further request
    ns = None if all_namespaces or not resource.namespaced else (namespace or api.namespace)
    tables = output in ("table", "wide")

    def collect() -> Iterator[Details]:
        collector = Collector(api, discovery, maps, now(), tables)
        if name:
            try:
                yield collector.one(resource, ns, name)
            except errors.NotFoundError:
                where = f' in namespace "{ns}"' if ns else ""
                raise errors.NotFoundError(f'{resource.qualified} "{name}" not found{where}') from None
            return
        for page in collector.pages(resource, ns, selector):
            yield from page

    def warned(items: Iterable[Details]) -> Iterator[Details]:
        for d in items:
            for warning in d.warnings:
                click.echo(f"Warning: {render.escape(warning)}", err=True)
            yield d

    def show(items: Iterable[Details]) -> None:
        at = now()
        out = sys.stdout
        if output == "json":
            docs = (render.document(d) for d in warned(items))
            out.flush()
            render.write_json(next(docs) if name else docs, out.buffer)
            out.buffer.flush()
            return
        if output == "yaml":
            docs = (render.document(d) for d in warned(items))
            render.write_yaml(next(docs) if name else docs, out)
        else:
            shown = 0
            for d in warned(items):
                if shown:
                    out.write("\n")
                render.table(d, at, output == "wide", out)
                shown += 1
            if not shown:
                where = "" if ns is None else f' in namespace "{ns}"'
                click.echo(f"No {resource.qualified} found{where}.", err=True)
        out.flush()

    if not watch:
        show(collect())
        return

    from . import watch as watching
    from .relations import ListScope, Watch

    # Only a list can be empty (a missing NAME ends the command); it still watches its collection.
    own = ListScope.of(resource.path(ns), {"labelSelector": selector})

    def watches(items: list[Details]) -> list[Watch]:
        return [w for d in items for w in d.watches] or [(own, "")]

    try:
        watching.run(api, lambda: list(collect()), watches, lambda items: [d.versions() for d in items], show)
    except KeyboardInterrupt:
        return


@cli.command()
@click.option(
    "-o",
    "--output",
    metavar="FORMAT",
    type=click.Choice(("table", "json", "yaml")),
    default="table",
    help="table (the default), json, yaml.",
)
@field_map_option
def kinds(output: str, field_maps: tuple[str, ...]) -> None:
    """List the kinds that have field maps and the file each map came from (validates every map)."""
    from . import render
    from .fieldmaps import FieldMaps

    maps = FieldMaps(list(field_maps)).all()
    rows: list[dict[str, Any]] = [
        {
            "kind": m.kind,
            "group": m.group,
            "version": m.version,
            "source": m.source,
            "fields": len(m.fields),
            "related": [r.name for r in m.related],
        }
        for m in maps
    ]
    out = sys.stdout
    if output == "json":
        out.flush()
        render.write_json(rows, out.buffer)
        out.buffer.flush()
    elif output == "yaml":
        render.write_yaml(rows, out)
    else:
        from tabulate import tabulate

        body = [
            [
                r["kind"],
                r["group"] or '""',
                r["version"],
                r["fields"],
                ",".join(r["related"]) or "<none>",
                r["source"],
            ]
            for r in rows
        ]
        out.write(
            tabulate(
                body,
                headers=["KIND", "GROUP", "VERSION", "FIELDS", "RELATED", "SOURCE"],
                tablefmt="plain",
            )
            + "\n"
        )


COMPLETE_VAR = "_KUBECTL_CYCLOPS_COMPLETE"


def main() -> None:
    cli(prog_name="kubectl cyclops", complete_var=COMPLETE_VAR)


def complete() -> None:
    """`kubectl_complete-cyclops`: kubectl (1.26+) asks plugins for completions in cobra's protocol.

    kubectl runs `kubectl_complete-cyclops __complete ARGS... INCOMPLETE`; the answer is one
    candidate per line, then `:4` (cobra's "no file completion" directive).
    """
    from click.shell_completion import ShellComplete

    args = sys.argv[1:]
    if args[:1] in (["__complete"], ["__completeNoDesc"]):
        args = args[1:]
    *words, incomplete = args or [""]
    shell = ShellComplete(cli, {}, "kubectl cyclops", COMPLETE_VAR)
    for item in shell.get_completions(words, incomplete):
        print(item.value)
    print(":4")
