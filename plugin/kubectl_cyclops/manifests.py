"""Manifests for `wait -f`: the objects in files, directories or stdin, as `kubectl apply -f` reads them.

YAML or JSON, several documents per file, and `List` kinds (any kind with
`items`, as kubectl's `meta.IsListType`) expanded into their items. A directory
is read for its `.json`, `.yaml` and `.yml` files in name order, recursively
with `-R`. Only the identity of each object is kept: wait reads the rest from
the server. URLs are refused: a pipeline downloads, then waits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import yaml

from . import errors

EXTENSIONS = (".json", ".yaml", ".yml")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Manifest(NamedTuple):
    """One object a manifest names: where it was written, its apiVersion, kind, name and namespace (if any)."""

    source: str  # FILE or FILE#N (the Nth document), "-" for stdin
    api_version: str
    kind: str
    name: str
    namespace: str | None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


def files(paths: Sequence[str], recursive: bool) -> Iterator[str]:
    """Each -f argument as the files it names: itself, `-`, or a directory's manifest files."""
    for arg in paths:
        if "://" in arg:
            raise errors.UsageError(f"-f {arg}: URLs are not read (download the manifest, then wait on the file)")
        if arg == "-":
            yield arg
            continue
        path = Path(arg)
        if path.is_dir():
            found = path.rglob("*") if recursive else path.glob("*")
            yield from sorted(str(p) for p in found if p.is_file() and p.suffix in EXTENSIONS)
        elif path.exists():
            yield arg
        else:
            raise errors.UsageError(f'the path "{arg}" does not exist')


def _documents(text: str, source: str) -> list[Any]:
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        raise errors.UsageError(f"{source}: not YAML or JSON: {' '.join(str(exc).split())}") from None


def _objects(doc: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A document's objects: itself, or a List's items (each with its place in the list)."""
    if not isinstance(doc, dict):
        raise errors.UsageError(f"{where}: expected an object with apiVersion and kind, got {type(doc).__name__}")
    if isinstance(doc.get("items"), list) and str(doc.get("kind", "")).endswith("List"):
        for i, item in enumerate(doc["items"]):
            yield from _objects(item, f"{where} items[{i}]")
        return
    yield where, doc


def _manifest(obj: dict[str, Any], where: str) -> Manifest:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        raise errors.UsageError(f"{where}: an object needs apiVersion and kind")
    meta: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name:
        named = f' (generateName "{meta["generateName"]}")' if meta.get("generateName") else ""
        raise errors.UsageError(f"{where}: {kind}{named} has no name: wait needs objects with names")
    return Manifest(where, api_version, kind, name, str(namespace) if namespace else None)


def read(paths: Sequence[str], recursive: bool, stdin: TextIO) -> list[Manifest]:
    """Every object the manifests name, in order, each once."""
    out: dict[tuple[str, str, str, str | None], Manifest] = {}
    for file in files(paths, recursive):
        try:
            text = stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.UsageError(f"cannot read {file}: {exc}") from None
        docs = _documents(text, file)
        for n, doc in enumerate(docs, 1):
            for where, obj in _objects(doc, f"{file}#{n}" if len(docs) > 1 else file):
                m = _manifest(obj, where)
                out.setdefault((m.group, m.kind, m.name, m.namespace), m)
    if not out:
        raise errors.UsageError(f"no objects in {', '.join(paths)}")
    return list(out.values())
