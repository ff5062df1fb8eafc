"""Free TCP ports for the processes of a local cluster, handed out by the kernel.

kwokctl's own choice (the highest free ports below 32766) is the same in every
process that asks at the same moment, so two clusters starting at once could
pick the same ports. The kernel's choice for a bind to port 0 is not: sockets
held open together get distinct ports, and other processes get others. The
ports are released just before the components bind them; if something takes
one in between, that component exits and the start is retried with new ports.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int, host: str = "") -> list[int]:
    """`count` distinct ports free on `host` (every interface by default), from the kernel's ephemeral range."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
