"""A watch's chunked body read in batches (transport.chunks), over real sockets: plain, and TLS."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_cyclops.transport import ProtocolError, chunks, waiting
from tests.replay import load


def event_lines() -> list[bytes]:
    """A recorded watch's events, one line each, as an API server sends them."""
    return [orjson.dumps(e) + b"\n" for stream in load("wait-job-complete")["streams"].values() for e in stream]


LAST = b"0\r\nX-Trailer: yes\r\n\r\n"  # the last chunk, and a trailer


def framed(payloads: list[bytes], extensions: list[bytes] | None = None, upper: bool = False) -> bytes:
    """A chunked body of these chunks (each with its extension, if any), its last chunk and a trailer."""
    out = []
    for i, data in enumerate(payloads):
        size = f"{len(data):X}" if upper else f"{len(data):x}"
        out.append(size.encode() + ((extensions or [])[i : i + 1] or [b""])[0] + b"\r\n" + data + b"\r\n")
    return b"".join(out) + LAST


@contextmanager
def connected(send: Callable[[socket.socket], None]) -> Iterator[socket.socket]:
    """A socket whose peer a thread writes to with `send`, then closes."""
    ours, theirs = socket.socketpair()

    def write() -> None:
        try:
            send(theirs)
        finally:
            theirs.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield ours
    finally:
        writer.join(10)
        ours.close()


def read_all(sock: socket.socket, pauses: list[float] | None = None) -> list[bytes]:
    with sock.makefile("rb") as fp:
        return list(chunks(fp, lambda: waiting(sock), (pauses if pauses is not None else []).append))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_chunk_is_read_whole_and_in_order_however_the_body_is_cut_on_the_wire(data) -> None:
    """The recorded events, one chunk each (as an API server flushes them) or cut into chunks anywhere,
    with extensions and upper-case sizes, written in pieces cut anywhere: every chunk's data comes whole,
    in order, and reading ends at the last chunk."""
    lines = event_lines()
    body = b"".join(lines)
    if data.draw(st.booleans()):
        payloads = lines
    else:
        cuts = sorted(data.draw(st.sets(st.integers(1, len(body) - 1), max_size=20)))
        payloads = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    extensions = [data.draw(st.sampled_from([b"", b";name=value", b' ;x="y"'])) for _ in payloads]
    wire = framed(payloads, extensions, upper=data.draw(st.booleans()))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(wire) - 1), max_size=30)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]

    def send(peer: socket.socket) -> None:
        for piece in pieces:
            peer.sendall(piece)

    with connected(send) as sock:
        assert read_all(sock) == payloads


def test_chunks_that_have_come_are_read_without_a_pause_and_the_next_after_one() -> None:
    """Events that are there when the reader looks are read one after another; when nothing more has come,
    the reader pauses (once per batch) before it reads again."""
    lines = event_lines()
    wire = framed(lines)
    assert len(wire) < 100_000, "all of it fits in the socket's buffers before it is read"
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(wire)
        pauses: list[float] = []
        assert read_all(ours, pauses) == lines
        assert pauses == []

    paused = threading.Semaphore(0)

    def one_per_pause(peer: socket.socket) -> None:  # the next chunk only once the reader has paused
        for line in lines:
            assert paused.acquire(timeout=10)
            peer.sendall(framed([line]).removesuffix(LAST))
        assert paused.acquire(timeout=10)
        peer.sendall(framed([]))

    with connected(one_per_pause) as sock, sock.makefile("rb") as fp:
        pauses = []

        def pause(seconds: float) -> None:
            pauses.append(seconds)
            paused.release()

        assert list(chunks(fp, lambda: waiting(sock), pause)) == lines
    assert len(pauses) == len(lines) + 1  # before each chunk, and before the last (empty) one
    assert set(pauses) == {0.05}


def test_over_tls_what_has_come_is_read_without_a_pause(tls: tuple[Path, Path]) -> None:
    """The same over TLS, each event a record of its own as a server's flush makes it: none is waited for."""
    lines = event_lines()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*tls)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(tls[0])
    ours, theirs = socket.socketpair()
    sent = threading.Event()

    def send() -> None:
        with server.wrap_socket(theirs, server_side=True) as peer:
            for line in lines:
                peer.sendall(framed([line]).removesuffix(LAST))
            peer.sendall(framed([]))
            sent.set()
            peer.recv(1)  # open until the reader is done

    writer = threading.Thread(target=send, daemon=True)
    writer.start()
    with client.wrap_socket(ours, server_hostname="127.0.0.1") as sock:
        assert sent.wait(10)
        pauses: list[float] = []
        assert read_all(sock, pauses) == lines
        assert pauses == []
    writer.join(10)


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b"10\r\n0123456789", "IncompleteRead"),  # the connection closes mid-chunk
        (b"4\r\nabcd\r\n", "IncompleteRead"),  # ... or before the last chunk
        (b"zz\r\nabcd\r\n0\r\n\r\n", "not a size"),
        (b"\r\nabcd\r\n0\r\n\r\n", "not a size"),
        (b"4\r\nabcdef\r\n0\r\n\r\n", "does not end where its size says"),
        (b"4" * 2000, "too long"),
    ],
)
def test_a_body_that_is_not_whole_chunks_is_an_error(wire: bytes, error: str) -> None:
    with connected(lambda peer: peer.sendall(wire)) as sock, pytest.raises(ProtocolError) as raised:
        read_all(sock)
    assert error in repr(raised.value)
