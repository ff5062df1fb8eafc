"""The field map format v1: its JSON Schema, the loader that validates with it, and a corpus of maps.

`tests/fieldmap-corpus/invalid/` holds one map per rule of the schema (and per check a
schema cannot make), each with its error line pinned in its first comment;
`valid/` holds maps that use every part of the format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_cyclops import cli
from kubectl_cyclops.errors import ExitCode, FieldMapError, escape
from kubectl_cyclops.fieldmaps import BUILTIN, SCHEMA, FieldMaps
from kubectl_cyclops.formats import FORMATTERS

CORPUS = Path(__file__).parent / "fieldmap-corpus"
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
SCHEMA_DOC = json.loads(SCHEMA.read_text())
REFERENCE = jsonschema.Draft7Validator(SCHEMA_DOC)  # an independent implementation of the same schema
BUILTIN_MAPS = sorted(p for p in BUILTIN.glob("*.yaml") if p.name != "_library.yaml")


def _load_dir(tmp_path: Path, text: str, name: str = "map.yaml") -> Path:
    directory = tmp_path / "maps"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return directory


def test_the_schema_is_valid_draft_7_and_published_in_the_repo() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA_DOC)
    published = Path(__file__).parents[1] / "schema" / "fieldmap-v1.json"
    assert published.read_text() == SCHEMA.read_text(), "copy plugin/kubectl_cyclops/schema/ to schema/"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_an_invalid_map_is_exit_9_with_its_pinned_line(tmp_path: Path, path: Path) -> None:
    text = path.read_text()
    pinned = re.match(r"# error: (.*)\n", text)
    assert pinned, f"{path} has no pinned error line"
    directory = _load_dir(tmp_path, text.split("\n", 1)[1], path.name)
    result = CliRunner().invoke(cli.cli, ["kinds", "--field-maps", str(directory)])
    assert result.exit_code == ExitCode.FIELD_MAP
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: invalid field map {directory / path.name}: {pinned.group(1)}")
    if not text.split("\n", 1)[1].startswith("apiVersion: [unclosed"):
        assert line == f"error: invalid field map {directory / path.name}: {pinned.group(1)}"


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_a_valid_map_loads_and_the_reference_validator_agrees(tmp_path: Path, path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    REFERENCE.validate(doc)
    fmap = FieldMaps([str(_load_dir(tmp_path, path.read_text(), path.name))]).get("example.com", "Thing")
    assert fmap.kind == "Thing"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_the_reference_validator_rejects_what_the_schema_rejects(path: Path) -> None:
    """Where the loader's message comes from the schema, an independent validator rejects the map too."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return
    semantic = (
        *("bad JSONPath", "names no", "includes itself", "duplicate", "second relation", "apiVersion", "kind:"),
        *("only there", "only in a forEachRelated rule", "not in a forEachRelated rule"),
    )
    if any(s in path.read_text().splitlines()[0] for s in semantic):
        return  # checks a schema cannot express, made by the loader
    assert not REFERENCE.is_valid(doc), path.name


@pytest.mark.parametrize("path", [*BUILTIN_MAPS, Path("tests/crd-fieldmaps/crontab.yaml")], ids=lambda p: p.name)
def test_every_builtin_map_is_v1_and_valid(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    schema_ref = text.splitlines()[0].split("=", 1)[1]
    assert (path.parent / schema_ref).resolve() == (
        SCHEMA if path.parent == BUILTIN else Path("schema/fieldmap-v1.json").resolve()
    ).resolve()
    REFERENCE.validate(yaml.safe_load(text))


def test_the_library_sets_and_templates_are_valid_fields_and_relations() -> None:
    library = yaml.safe_load((BUILTIN / "_library.yaml").read_text())
    definitions = {"definitions": SCHEMA_DOC["definitions"]}
    for fields in library["fieldSets"].values():
        jsonschema.validate(fields, {**definitions, "$ref": "#/definitions/fields"})
    for template in library["relationTemplates"].values():
        jsonschema.validate({**template, "via": [{"owned": True}]}, {**definitions, "$ref": "#/definitions/relation"})
    for rule in library["commonRules"]:
        jsonschema.validate(rule, {**definitions, "$ref": "#/definitions/rule"})
    assert FieldMaps().common()


def test_the_container_paths_and_the_pods_relation_are_written_once() -> None:
    """Reuse without copying: the built-in maps include the pod field sets and the pods relation template."""
    texts = {p.name: p.read_text() for p in BUILTIN.glob("*.yaml")}
    four = "[.spec.initContainers, .spec.containers, .status.initContainerStatuses, .status.containerStatuses]"
    assert sum(t.count(four) for t in texts.values()) == 2  # the library's podContainers, and pod.yaml's environment
    assert sum(t.count("format: containerDetails") for t in texts.values()) == 1
    for kind in ("job", "deployment", "statefulset", "daemonset", "replicaset"):
        assert "include: pods" in texts[f"{kind}.yaml"], kind


@pytest.mark.parametrize("name", sorted(FORMATTERS))
def test_the_schema_checks_each_formats_paths_and_args_as_the_format_declares(name: str) -> None:
    fmt = FORMATTERS[name]
    low, high = fmt.paths
    for n in range(1, 6):
        for args in ((), ("a",)):
            field: dict[str, Any] = {"name": "x", "paths": [".a"] * n, "format": name}
            if args:
                field["args"] = list(args)
            ok = low <= n <= (high if high is not None else 99) and bool(args) == fmt.takes_args
            doc = {
                "apiVersion": "kubectl-cyclops/v1",
                "kind": "FieldMap",
                "resource": {"group": "", "version": "v1", "kind": "Pod"},
                "fields": [field],
            }
            assert REFERENCE.is_valid(doc) == ok, (name, n, args)


def _loads_or_exit_9(tmp_path: Path, doc: Any) -> None:
    directory = _load_dir(tmp_path, yaml.safe_dump(doc))
    error: FieldMapError | None = None
    try:
        FieldMaps([str(directory)])
    except FieldMapError as exc:  # anything else fails the test
        error = exc
    if error is not None:
        assert "\n" not in escape(str(error))  # as the CLI prints it: one line
        assert error.exit_code == ExitCode.FIELD_MAP


def _from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Documents built from the schema's own shape: its properties, enums, consts, types and items.

    The conditional rules (if/then, oneOf) are left to chance, so some documents break them: those must be
    rejected in one line, the rest loaded.
    """
    if "$ref" in node:
        return st.deferred(lambda: _from_schema(SCHEMA_DOC["definitions"][node["$ref"].rsplit("/", 1)[1]], depth + 1))
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "if" in node and "then" in node:
        branches = [node["then"], node.get("else", {"type": "null"})]
        return st.one_of(*(_from_schema(b, depth) for b in branches))
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        props = node.get("properties", {})
        required = [k for k in node.get("required", []) if k in props]
        optional = [k for k in props if k not in required] if depth < 6 else []
        fixed = st.fixed_dictionaries({k: _from_schema(props[k], depth + 1) for k in required})
        extra = st.fixed_dictionaries({}, optional={k: _from_schema(props[k], depth + 1) for k in optional})
        free = node.get("additionalProperties")
        more = (
            st.dictionaries(st.sampled_from([".spec.a", ".status.b", "x"]), _from_schema(free, depth + 1), max_size=2)
            if isinstance(free, dict)
            else st.just({})
        )
        return st.tuples(fixed, extra, more).map(lambda t: {**t[2], **t[1], **t[0]})
    if kind == "array":
        items = _from_schema(node.get("items", {"type": "string"}), depth + 1)
        return st.lists(items, min_size=node.get("minItems", 0), max_size=3 if depth < 6 else node.get("minItems", 0))
    if kind == "string":
        return st.sampled_from([".spec.replicas", ".status.phase", "{.metadata.name}", ".a[?(@", "x", "5m", ""])
    if kind == "boolean":
        return st.booleans()
    if kind == "number":
        return st.integers(-3, 3)
    if isinstance(kind, list):
        return st.one_of(st.text(max_size=5), st.integers(), st.booleans())
    return st.one_of(st.none(), st.text(max_size=5), st.integers())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(doc=_from_schema(SCHEMA_DOC))
def test_random_maps_from_the_schema_load_or_are_rejected_in_one_line(tmp_path: Path, doc: Any) -> None:
    _loads_or_exit_9(tmp_path, doc)


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _mutate(doc: Any, data: st.DataObject) -> Any:
    """One random change somewhere in the document: a key removed, a value replaced, a key added."""
    if isinstance(doc, dict) and doc:
        key = data.draw(st.sampled_from(sorted(doc, key=str)))
        action = data.draw(st.sampled_from(["descend", "remove", "replace", "add"]))
        if action == "remove":
            return {k: v for k, v in doc.items() if k != key}
        if action == "replace":
            return {**doc, key: data.draw(_VALUES)}
        if action == "add":
            key = data.draw(st.one_of(st.text(min_size=1, max_size=8), st.integers(), st.booleans()))  # YAML keys
            return {**doc, key: data.draw(_VALUES)}
        return {**doc, key: _mutate(doc[key], data)}
    if isinstance(doc, list) and doc:
        i = data.draw(st.integers(0, len(doc) - 1))
        return [*doc[:i], _mutate(doc[i], data), *doc[i + 1 :]]
    return data.draw(_VALUES)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_mutations_of_valid_maps_are_accepted_or_exit_9(tmp_path: Path, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from([*VALID, *BUILTIN_MAPS]))
    doc = yaml.safe_load(path.read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        doc = _mutate(doc, data)
    _loads_or_exit_9(tmp_path, doc)
