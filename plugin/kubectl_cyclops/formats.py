"""Formatters named by field maps: how a value reads in a table and in JSON.

Each formatter is a pair of pure functions of the extracted value (None, a
scalar, a list or a mapping) and `now`. The table side returns a string, or a
list of lines for multi-line cells; the JSON side returns plain JSON data. Missing values are None in JSON and
`<none>` in tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from . import containers
from .durations import human_duration, parse_time
from .selectors import to_query
from .text import NONE, condition_line, plain, scalar

if TYPE_CHECKING:
    from decimal import Decimal

Lines = str | list[str]  # a table cell: one line, or several (escaped line by line when rendered)

_SUFFIX: dict[str, int | str] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": "1e-9",
    "u": "1e-6",
    "m": "1e-3",
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")
ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource.Quantity ("10Gi", "500m", "1e3") as a number."""
    from decimal import Decimal, InvalidOperation  # only where a map formats quantities: other starts do not pay for it

    if value is None:
        return None
    m = _QUANTITY.match(str(value).strip())
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    if m.group(2):
        return number * Decimal(10) ** int(m.group(2)[1:])
    return number * Decimal(_SUFFIX[m.group(3) or ""])


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text(value: Any, now: datetime) -> str:
    return plain(value)


def age(value: Any, now: datetime) -> str:
    t = parse_time(value)
    return human_duration((now - t).total_seconds()) if t else text(value, now)


def timestamp(value: Any, now: datetime) -> str:
    t = parse_time(value)
    if not t:
        return text(value, now)
    return f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')} ({human_duration((now - t).total_seconds())} ago)"


def _span(value: Any, now: datetime) -> float | None:
    """Seconds from the first timestamp to the first later one present, or to now."""
    times = [parse_time(t) for t in _listify(value)]
    if not times or times[0] is None:
        return None
    end = next((t for t in times[1:] if t is not None), now)
    return (end - times[0]).total_seconds()


def duration_table(value: Any, now: datetime) -> str:
    s = _span(value, now)
    return NONE if s is None else human_duration(s)


def duration_json(value: Any, now: datetime) -> Any:
    s = _span(value, now)
    return None if s is None else round(s)


def bytes_json(value: Any, now: datetime) -> Any:
    q = parse_quantity(value)
    return None if q is None else int(q)


def access_modes(value: Any, now: datetime) -> str:
    modes = _listify(value)
    return ",".join(ACCESS_MODES.get(m, m) for m in modes) if modes else NONE


def join(value: Any, now: datetime) -> str:
    items = _listify(value)
    return ", ".join(scalar(v) for v in items) if items else NONE


def count(value: Any, now: datetime) -> int:
    return len(value) if isinstance(value, list | dict) else (0 if value is None else 1)


def total(value: Any, now: datetime) -> Any:
    numbers = [v for v in _listify(value) if isinstance(v, int | float)]
    return sum(numbers) if numbers else (None if value is None else 0)


def ready_count(value: Any, now: datetime) -> str:
    """containerStatuses[*].ready as kubectl's READY column: 1/2."""
    flags = _listify(value)
    return f"{sum(1 for f in flags if f is True)}/{len(flags)}" if flags else NONE


def keys_json(value: Any, now: datetime) -> Any:
    return sorted(value) if isinstance(value, dict) else None


def keys_table(value: Any, now: datetime) -> str:
    return ", ".join(sorted(value)) if isinstance(value, dict) and value else NONE


def sizes(value: Any, now: datetime) -> str:
    if not isinstance(value, dict) or not value:
        return NONE
    return ", ".join(f"{k}: {v} bytes" for k, v in sorted(value.items()))


def selector(value: Any, now: datetime) -> str:
    s = to_query(value)
    return s if s else NONE


def node_selector_terms(value: Any, now: datetime) -> str:
    """nodeAffinity.required.nodeSelectorTerms: terms ORed with ' | ', expressions ANDed."""
    terms = []
    for term in _listify(value):
        exprs = [to_query({"matchExpressions": [e]}) for e in (term or {}).get("matchExpressions") or []]
        exprs += [
            f"field:{f.get('key')} {f.get('operator')} ({','.join(f.get('values') or [])})"
            for f in (term or {}).get("matchFields") or []
        ]
        terms.append(",".join(exprs))
    return " | ".join(t for t in terms if t) or NONE


CONDITION_TIMES = (
    ("lastTransitionTime", "since {}"),
    ("lastProbeTime", "probed {} ago"),
    ("lastHeartbeatTime", "heartbeat {} ago"),
)


def conditions_table(value: Any, now: datetime) -> Lines:
    """`Type=Status (Reason): message`, then every timestamp the condition has, as kubectl describe shows them:
    `[since 5m, probed 10s ago]`."""
    out = []
    for c in _listify(value):
        if not isinstance(c, dict):
            continue
        times = [words.format(age(c[key], now)) for key, words in CONDITION_TIMES if c.get(key)]
        out.append(condition_line(c) + (f" [{', '.join(times)}]" if times else ""))
    return out or NONE


def conditions_json(value: Any, now: datetime) -> Any:
    keys = ("type", "status", "reason", "message", "lastTransitionTime", "lastProbeTime")
    return [
        {k: c.get(k) for k in keys}
        | ({"lastHeartbeatTime": c["lastHeartbeatTime"]} if "lastHeartbeatTime" in c else {})
        for c in _listify(value)
        if isinstance(c, dict)
    ]


def phase_table(value: Any, now: datetime) -> str:
    """[phase, deletionTimestamp, since]: `Terminating (since 5s)`, `Bound (since 5m)`, or the phase."""
    phase, deleted, since = ([*_listify(value), None, None, None])[:3]
    if parse_time(deleted):
        return f"Terminating (since {age(deleted, now)})"
    if parse_time(since):
        return f"{plain(phase)} (since {age(since, now)})"
    return plain(phase)


def phase_json(value: Any, now: datetime) -> Any:
    return _listify(value)[0] if _listify(value) else None


def ports(value: Any, now: datetime) -> str:
    out = []
    for p in _listify(value):
        if isinstance(p, dict):
            target = p.get("targetPort")
            node = f":{p['nodePort']}" if p.get("nodePort") else ""
            mapped = f"->{target}" if target not in (None, p.get("port")) else ""
            out.append(f"{p.get('port')}{node}{mapped}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or NONE


def first_key_json(value: Any, now: datetime, keys: tuple[str, ...] = ()) -> Any:
    """The first of `keys` present in a mapping: which volume source a PV uses."""
    if not isinstance(value, dict):
        return None
    return next((k for k in keys if value.get(k) is not None), None)


def first_key_table(value: Any, now: datetime, keys: tuple[str, ...] = ()) -> str:
    return first_key_json(value, now, keys) or NONE


# The in-tree volume sources whose API type has a readOnly field: kubectl describe pv prints
# `ReadOnly: false` for them when it is not set.
_READ_ONLY_SOURCES = frozenset(
    (
        "nfs", "iscsi", "fc", "rbd", "cephfs", "cinder", "awsElasticBlockStore", "gcePersistentDisk", "azureDisk",
        "azureFile", "flexVolume", "quobyte", "scaleIO", "storageos", "portworxVolume", "glusterfs", "csi",
    )
)  # fmt: skip


def volume_source_json(value: Any, now: datetime, keys: tuple[str, ...] = ()) -> Any:
    """The first of `keys` present in a PV's spec (`source`) and its parameters, with readOnly as the API
    defaults it for sources that have one."""
    source = first_key_json(value, now, keys)
    if source is None:
        return None
    params = dict(value[source]) if isinstance(value[source], dict) else {}
    if source in _READ_ONLY_SOURCES:
        params.setdefault("readOnly", False)
    return {"source": source, "parameters": params}


def volume_source_table(value: Any, now: datetime, keys: tuple[str, ...] = ()) -> Lines:
    """The source's name, then one `key: value` line per parameter (nested ones as `secretRef.name`), as
    kubectl describe pv lists them."""
    doc = volume_source_json(value, now, keys)
    if doc is None:
        return NONE
    params = settings_table(doc["parameters"], now)
    return [doc["source"], *([] if params == NONE else params)]


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [kv for k, v in value.items() for kv in _flat(v, f"{prefix}{k}.")]
    return [(prefix[:-1], value)]


def settings_table(value: Any, now: datetime) -> Lines:
    """A mapping as `key: value` lines, nested mappings flattened to `outer.inner` (a dataSource, CSI attributes)."""
    if not isinstance(value, dict) or not value:
        return NONE
    return [f"{k}: {plain(v)}" for k, v in _flat(value)]


def key_values_table(value: Any, now: datetime) -> Lines:
    """Annotations: one `key: value` line each, sorted, as kubectl describe lists them."""
    if not isinstance(value, dict) or not value:
        return NONE
    return [f"{k}: {scalar(v)}" for k, v in sorted(value.items())]


def topologies(value: Any, now: datetime) -> Lines:
    """A StorageClass's allowedTopologies as describe prints them: `Term 0: key in [a, b]`."""
    out = []
    for i, term in enumerate(_listify(value)):
        exprs = [
            f"{e.get('key')} in [{', '.join(map(str, e.get('values') or []))}]"
            for e in (term or {}).get("matchLabelExpressions") or []
            if isinstance(e, dict)
        ]
        out.append(f"Term {i}: {', '.join(exprs) or NONE}")
    return out or NONE


def namespaced_name(value: Any, now: datetime) -> Any:
    """[namespace, name] as namespace/name; a missing part is left out."""
    parts = [str(v) for v in _listify(value) if v not in (None, "")]
    return "/".join(parts) if parts else None


def policy_rules(value: Any, now: datetime) -> Lines:
    out = []
    for r in _listify(value):
        if not isinstance(r, dict):
            continue
        verbs = ",".join(r.get("verbs") or [])
        targets = ",".join(r.get("resources") or r.get("nonResourceURLs") or [])
        groups = ",".join(g or '""' for g in r.get("apiGroups") or [])
        names = ",".join(r.get("resourceNames") or [])
        out.append(f"{verbs} {targets}" + (f" [{groups}]" if groups else "") + (f" names={names}" if names else ""))
    return out or NONE


def peers(value: Any, now: datetime) -> Lines:
    out = []
    for p in _listify(value):
        if not isinstance(p, dict):
            continue
        part = []
        if "namespaceSelector" in p:
            part.append(f"namespaces({to_query(p['namespaceSelector']) or 'all'})")
        if "podSelector" in p:
            part.append(f"pods({to_query(p['podSelector']) or 'all'})")
        if "ipBlock" in p:
            block = p["ipBlock"] or {}
            excepted = ",".join(block.get("except") or [])
            part.append(str(block.get("cidr")) + (f" except {excepted}" if excepted else ""))
        out.append(" ".join(part))
    return out or NONE


def identity(value: Any, now: datetime) -> Any:
    return value


class Formatter(NamedTuple):
    """A format: its table and JSON sides, how many paths it reads (`paths`: least, most or None for
    any number) and whether it takes `args`. The schema checks a map's fields against the same rules, and
    tests/test_fieldmap_schema.py checks that the two agree."""

    table: Callable[..., Any]
    json: Callable[..., Any] = identity
    paths: tuple[int, int | None] = (1, 1)
    takes_args: bool = False


_POD = (4, 4)  # [spec.initContainers, spec.containers, status.initContainerStatuses, status.containerStatuses]

FORMATTERS: dict[str, Formatter] = {
    "text": Formatter(text),
    "quantity": Formatter(text),
    "bytes": Formatter(lambda v, n: text(bytes_json(v, n), n), bytes_json),
    "age": Formatter(age),
    "timestamp": Formatter(timestamp),
    "duration": Formatter(duration_table, duration_json, paths=(1, None)),
    "join": Formatter(join, lambda v, n: _listify(v)),
    "accessModes": Formatter(access_modes),
    "count": Formatter(lambda v, n: str(count(v, n)), count),
    "sum": Formatter(lambda v, n: text(total(v, n), n), total),
    "ready": Formatter(ready_count, ready_count),
    "keys": Formatter(keys_table, keys_json),
    "sizes": Formatter(sizes),
    "selector": Formatter(selector, lambda v, n: to_query(v) or None),
    "nodeSelectorTerms": Formatter(node_selector_terms),
    "topologies": Formatter(topologies),
    "conditions": Formatter(conditions_table, conditions_json),
    "containers": Formatter(
        lambda v, n: containers.state_lines(v) or NONE, lambda v, n: containers.containers(v), paths=_POD
    ),
    "initContainers": Formatter(
        lambda v, n: containers.state_lines([None, None, v, None]) or NONE,
        lambda v, n: containers.containers([None, None, v, None]),
    ),
    "containerDetails": Formatter(
        lambda v, n: containers.detail_lines(v, n) or NONE, lambda v, n: containers.containers(v), paths=_POD
    ),
    "env": Formatter(lambda v, n: containers.env_lines(v) or NONE, lambda v, n: containers.containers(v), paths=_POD),
    "phase": Formatter(phase_table, phase_json, paths=(1, 3)),
    "ports": Formatter(ports),
    "namespacedName": Formatter(lambda v, n: namespaced_name(v, n) or NONE, namespaced_name, paths=(1, None)),
    "policyRules": Formatter(policy_rules),
    "peers": Formatter(peers),
    "settings": Formatter(settings_table),
    "keyValues": Formatter(key_values_table),
    "firstKey": Formatter(first_key_table, first_key_json, takes_args=True),
    "volumeSource": Formatter(volume_source_table, volume_source_json, takes_args=True),
}
