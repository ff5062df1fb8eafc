"""Free TCP ports for the processes of a local cluster, outside the kernel's ephemeral range.

kwokctl's own choice (the highest free ports below 32766) is the same in every
process that asks at the same moment, so two clusters starting at once could
pick the same ports. A port the kernel hands out for a bind to port 0 comes from
its ephemeral range, which every outgoing connection draws from too: between the
moment the port is released and the moment its component binds it, any
connection made meanwhile (a test's kubectl, on a busy host) can take it, and
the component exits with "address already in use". So the ports are drawn at
random from below that range, where connections never take theirs, and each is
checked free by binding it. Two clusters starting at once would have to draw the
same port in the same instant; if one still clashes, that component exits and
the start is retried with new ports.
"""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from pathlib import Path

LOWEST = 10_000  # below: well-known and registered services' ports
RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (32768 by default)."""
    try:
        return int(RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int, host: str = "") -> list[int]:
    """`count` distinct ports free on `host` (every interface by default), below the ephemeral range."""
    found: list[int] = []
    with ExitStack() as stack:  # held until all are found, so that none is drawn twice
        for port in random.sample(range(LOWEST, max(ephemeral_start(), LOWEST + 1000)), 200):
            sock = stack.enter_context(socket.socket())
            try:
                sock.bind((host, port))
            except OSError:
                continue
            found.append(port)
            if len(found) == count:
                return found
    raise OSError(f"no {count} free ports between {LOWEST} and the ephemeral range")
