"""The command line: `kubectl cyclops details|wait KIND [NAME]` and `kubectl cyclops kinds`.

This is the one boundary where typed errors become a single stderr line and an
exit code (docs/exit-codes.md).
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from . import __version__, errors
from .errors import ExitCode

FIELD_MAPS_ENV = "KUBECTL_CYCLOPS_FIELD_MAPS"

OUTPUTS = ("table", "wide", "json", "yaml")
WAIT_GOALS = ("healthy", "progressing", "failed", "unknown", "deleted")


class Group(click.Group):
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's own errors (a bad flag, a missing argument) as one escaped line too, exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            click.echo(f"error: {errors.escape(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.CyclopsError as exc:
            click.echo(f"error: {errors.escape(exc.message)}", err=True)
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
            reason = errors.escape(" ".join(str(exc).split()))
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


def selection_options(f: Callable[..., Any], kind_required: bool = True) -> Callable[..., Any]:
    """KIND[/NAME] [NAME] and what selects among objects, shared by details and wait."""
    options = [
        click.argument("kind", metavar="KIND[/NAME]", required=kind_required),
        click.argument("name", required=False),
        click.option(
            "-n",
            "--namespace",
            metavar="NS",
            help="The namespace (default: the context's namespace, else default); ignored for cluster-scoped kinds.",
        ),
        click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace (only without NAME)."),
        click.option(
            "-l",
            "--selector",
            metavar="SEL",
            help="A label selector in kubectl's syntax, e.g. 'app=web,tier in (a,b)' (only without NAME).",
        ),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), f)


def output_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-o",
        "--output",
        metavar="FORMAT",
        type=click.Choice(OUTPUTS),
        default="table",
        help="table (the default), wide (adds the fields a map marks wide), json, yaml.",
    )(f)


def _warn(line: str) -> None:
    click.echo(line, err=True)


@cli.command()
@selection_options
@cluster_options
@output_option
@click.option(
    "-w",
    "--watch",
    is_flag=True,
    help="Keep watching the object, its related objects and its events, and print it again whenever one "
    "changes (a list: whole at first, then each object that changed, and each one deleted); Ctrl-C ends (exit 0).",
)
@field_map_option
def details(output: str, watch: bool, **target: Any) -> None:
    """Show the details of KIND NAME (or of every KIND) with its related objects and events.

    \b
    Examples:
      kubectl cyclops details job pi -n batch
      kubectl cyclops details pv/task-pv-volume -o json
      kubectl cyclops details pods -l app=web -A -o wide
    """
    from . import render
    from .details import Details
    from .selection import now, select

    tables = output in ("table", "wide")
    sel = select(**target)

    def show(pages: Iterable[list[Details]]) -> None:
        shown = render.emit(pages, output, bool(sel.name), now(), sys.stdout, _warn)
        if not shown and tables:
            click.echo(f"No {sel.resource.qualified} found{sel.in_namespace}.", err=True)

    if not watch:
        # A one-shot call: its objects (the server's JSON is acyclic) are freed by reference counting, and
        # the cycle collector would only walk the heap again and again as it grows (docs/performance.md).
        # Switched on again only if it was on: entry.main starts without it, and the first collection after
        # that would walk every object the process made, only to exit.
        collecting = gc.isenabled()
        gc.disable()
        try:
            show(sel.pages())
        finally:
            if collecting:
                gc.enable()
        return

    gc.enable()  # entry.main starts without it; a watch runs for long
    from . import watch as watching
    from .details import Kept
    from .informer import informing

    sel.kept = Kept()

    def shown_of(items: list[Details]) -> list[Any]:
        return [d.shown() for d in items]

    def key(d: Details) -> tuple[str | None, str]:
        return d.subject.namespace, d.subject.name

    last: dict[tuple[str | None, str], tuple[Details, Any]] | None = None

    def show_changes(items: list[Details]) -> None:
        """One object: it again, whole. A list: whole at first, then as kubectl get --watch does, only what
        changed (each object whose rendering changed, and a line or document for each one deleted)."""
        nonlocal last
        now_shown = {key(d): (d, d.shown()) for d in items}
        if sel.name or last is None:
            show([items])
        else:
            for k, (d, shown) in now_shown.items():
                if k not in last or last[k][1] != shown:
                    render.emit([[d]], output, True, now(), sys.stdout, _warn)
            for k, (d, _) in last.items():
                if k not in now_shown:
                    render.deleted(d, output, sys.stdout)
        last = now_shown

    try:
        with informing(sel.api, sel.maps) as informer:
            watching.run(
                informer,
                lambda api: list(sel.collect(api)),
                shown_of,
                show_changes,
                lambda items: [d.subject.evaluation.status for d in items],
            )
    except KeyboardInterrupt:
        return


@cli.command()
@functools.partial(selection_options, kind_required=False)
@click.option(
    "-f",
    "--filename",
    "filenames",
    multiple=True,
    metavar="FILE",
    help="Wait for every object in these manifests (files, directories, - for stdin; repeatable), "
    "as kubectl apply -f names them.",
)
@click.option("-R", "--recursive", is_flag=True, help="With -f, read directories recursively.")
@cluster_options
@click.option(
    "--for",
    "goal",
    metavar="STATUS",
    type=click.Choice(WAIT_GOALS),
    default="healthy",
    help="The status to wait for: healthy (the default), progressing, failed, unknown, or deleted.",
)
@click.option(
    "--timeout",
    metavar="D",
    default="5m",
    help="How long to wait: a duration (30s, 5m, 1h) or seconds; 0 checks once (default 5m).",
)
@click.option(
    "--junit",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Also write a JUnit XML report, one test case per object, for CI tools (GitLab, Jenkins).",
)
@output_option
@field_map_option
def wait(
    goal: str,
    timeout: str,
    output: str,
    filenames: tuple[str, ...],
    recursive: bool,
    junit: str | None,
    **target: Any,
) -> None:
    """Wait until KIND NAME, every selected KIND, or everything in manifests (-f) has a status; a CI gate
    that says why.

    Waiting for healthy ends at once when an object fails (exit 10), printing its
    details: pods, exit codes, conditions, events. A timeout (exit 11) prints the
    last state of each object not there yet. Success (exit 0) prints one line per
    object, or the details documents with -o json|yaml. With -f, objects not
    created yet are waited for, and a summary line per object ends the output.

    \b
    Examples:
      kubectl cyclops wait job/migrate -n ci --timeout 10m
      kubectl cyclops wait jobs -l app=batch -n ci -o json > details.json
      kubectl cyclops wait -f k8s/ -R -n ci --junit wait.xml
      helm template app ./chart | kubectl cyclops wait -f - -n ci
      kubectl cyclops wait job/old --for deleted
    """
    from . import durations

    gc.enable()  # entry.main starts without it; a wait runs for long
    seconds = durations.parse(timeout)
    if seconds is None:
        raise errors.UsageError(f'invalid --timeout "{timeout}": use a duration like 30s, 5m, or 0 to check once')
    if filenames:
        _wait_manifests(filenames, recursive, goal, seconds, timeout, output, junit, target)
        return
    if recursive:
        raise errors.UsageError("-R goes with -f")
    if not target["kind"]:
        raise errors.UsageError("give KIND [NAME], KIND/NAME, or -f FILE")
    _wait_kind(goal, seconds, timeout, output, junit, target)


def _wait_kind(goal: str, seconds: float, timeout: str, output: str, junit: str | None, target: Any) -> None:
    from dataclasses import replace

    from . import render
    from . import wait as waiting
    from .details import Kept
    from .informer import JUDGING_INTERVAL, informing
    from .selection import now, select, with_events

    tables = output in ("table", "wide")
    sel = select(**target)
    sel.kept = Kept(judging=True)
    started = time.monotonic()
    with informing(sel.api, sel.maps, JUDGING_INTERVAL) as informer:
        outcome = waiting.wait(informer, lambda api: list(sel.collect(api)), goal, seconds)
        newest = informer.newest()
    summarized = outcome.result == "met" and (goal == "deleted" or tables)
    if junit or not summarized:  # details to show: with their events
        shown = dict(zip(map(id, outcome.seen), with_events(sel, outcome.seen, newest), strict=True))
        outcome = replace(outcome, items=[shown.get(id(d), d) for d in outcome.items], seen=list(shown.values()))
    if junit:
        from . import junit as report

        entries = [
            waiting.Entry(f"{sel.resource.qualified}/{d.subject.name}", d.subject.namespace, d) for d in outcome.seen
        ]
        report.write(junit, entries, goal, time.monotonic() - started, now())
    if summarized:
        for line in waiting.summary(outcome, goal, sel.resource.qualified, sel.name):
            click.echo(line)
    else:
        render.emit([outcome.items], output, bool(sel.name) and bool(outcome.items), now(), sys.stdout, _warn)
    if outcome.result != "met":
        raise waiting.failure(outcome, goal, timeout, sel.resource.qualified, sel.where())


def _wait_manifests(
    filenames: tuple[str, ...],
    recursive: bool,
    goal: str,
    seconds: float,
    timeout: str,
    output: str,
    junit: str | None,
    target: Any,
) -> None:
    """`wait -f`: every object of the manifests, on one informer; details of what failed, then a summary."""
    from . import render
    from . import wait as waiting
    from .details import Kept
    from .informer import JUDGING_INTERVAL, informing
    from .manifests import read as read_manifests
    from .selection import now, select_manifests, with_events

    for flag, given in (("KIND", target["kind"]), ("-A", target["all_namespaces"]), ("-l", target["selector"])):
        if given:
            raise errors.UsageError(f"-f names the objects: it does not go with {flag}")
    stdin = sys.stdin
    named = read_manifests(filenames, recursive, stdin)
    options = {k: v for k, v in target.items() if k not in ("kind", "name", "all_namespaces", "selector")}
    fleet = select_manifests(named, **options)
    fleet.kept = Kept(judging=True)
    with informing(fleet.api, fleet.maps, JUDGING_INTERVAL) as informer:
        tally = waiting.wait_all(
            informer, lambda api: [(t.label, t.namespace, d) for t, d in fleet.collect(api)], goal, seconds
        )
        newest = informer.newest()
    if junit or output in ("json", "yaml") or tally.result != "met":  # details to show: with their events
        present = [(e, e.details) for e in tally.entries if e.details is not None]
        for (e, _), d in zip(present, with_events(fleet, [d for _, d in present], newest), strict=True):
            e.details = d
    at = now()
    if junit:
        from . import junit as report

        report.write(junit, tally.entries, goal, tally.seconds, at)
    if output in ("json", "yaml"):
        doc = {"items": [render.document(d, at) for d in tally.shown(goal)], "summary": waiting.summary_json(tally)}
        if output == "json":
            sys.stdout.flush()
            render.write_json(doc, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            render.write_yaml(doc, sys.stdout)
    else:
        if tally.result != "met":
            render.emit([tally.shown(goal)], output, False, at, sys.stdout, _warn)
            click.echo()
        click.echo(render.columns(waiting.summary_rows(tally), waiting.SUMMARY_HEADERS))
    if tally.result != "met":
        raise waiting.fleet_failure(tally, goal, timeout)


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
            "related": list(dict.fromkeys(r.name for r in m.related)),
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
        from .render import columns

        body = [
            [
                r["kind"],
                r["group"] or '""',
                r["version"],
                str(r["fields"]),
                ",".join(r["related"]) or "<none>",
                r["source"],
            ]
            for r in rows
        ]
        out.write(columns(body, ["KIND", "GROUP", "VERSION", "FIELDS", "RELATED", "SOURCE"]) + "\n")


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
