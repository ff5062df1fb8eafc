"""The transport's HTTP/1.1 over real sockets: framing, kept-alive connections, interim answers, broken
answers, refused headers, and proxies (a CONNECT tunnel for https, the absolute URI for http).

The servers here are scripted: each connection they accept answers its requests with the next bytes of
its script, which carry bodies recorded from a real cluster.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from kubectl_cyclops import errors
from kubectl_cyclops.kubeconfig import Target
from kubectl_cyclops.transport import Transport, http_transport
from tests.replay import load

JOB = "GET /apis/batch/v1/namespaces/rec/jobs/done"
TIMEOUTS = (10.0, 10.0)


def recorded() -> bytes:
    """A Job as the API server answered it."""
    return orjson.dumps(load("job-complete")["phases"][0][JOB]["body"])


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(body: bytes, *headers: str, pieces: int = 5) -> bytes:
    """The body in chunks, one with an extension, its last chunk and a trailer."""
    step = -(-len(body) // pieces)
    parts = [body[i : i + step] for i in range(0, len(body), step)]
    sizes = [f"{len(p):x}".encode() + (b";ext=1" if i == 1 else b"") for i, p in enumerate(parts)]
    framed = b"".join(size + b"\r\n" + p + b"\r\n" for size, p in zip(sizes, parts, strict=True))
    return answer(framed + b"0\r\nX-Trailer: yes\r\n\r\n", "Transfer-Encoding: chunked", *headers)


def read_head(fp: object) -> bytes:
    head = b""
    while (line := fp.readline()) not in (b"\r\n", b""):  # type: ignore[attr-defined]
        head += line
    return head


HOLD = b"(hold)"  # a script's last entry: the server keeps the connection open until the client closes it


class Scripted:
    """A server on a real socket. Each connection it accepts gets the next script: the answers to its
    requests, one each, in order; after the last, the server closes it (unless told to HOLD it). It keeps
    every request head, by connection in the order they were accepted."""

    def __init__(self, scripts: list[list[bytes]], tls: tuple[Path, Path] | None = None) -> None:
        self.scripts, self.requests = scripts, []  # type: list[list[bytes]]
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        """Accept each connection in turn; each is answered on a thread of its own, while the next is waited for."""
        answering = []
        for script in self.scripts:
            conn, _ = self.listener.accept()
            heads: list[bytes] = []
            self.requests.append(heads)
            answering.append(threading.Thread(target=self.answer, args=(conn, script, heads), daemon=True))
            answering[-1].start()
        for thread in answering:
            thread.join(10)

    def answer(self, conn: socket.socket, script: list[bytes], heads: list[bytes]) -> None:
        if self.ctx:
            conn = self.ctx.wrap_socket(conn, server_side=True)
        with conn, conn.makefile("rb") as fp:
            for reply in script:
                if reply is HOLD:
                    while head := read_head(fp):  # a request here would go unanswered
                        heads.append(head)
                    break
                head = read_head(fp)
                if not head:
                    break
                heads.append(head)
                conn.sendall(reply)

    def close(self) -> None:
        self.thread.join(20)
        self.listener.close()


@contextmanager
def scripted(scripts: list[list[bytes]], tls: tuple[Path, Path] | None = None) -> Iterator[Scripted]:
    server = Scripted(scripts, tls)
    try:
        yield server
    finally:
        server.close()


def transport(server: str, headers: dict[str, str] | None = None, **target: object) -> Transport:
    return http_transport(Target(server, **target), {"User-Agent": "test", **(headers or {})}, {})  # type: ignore[arg-type]


def get(send: Transport, url: str) -> tuple[int, bytes]:
    resp = send(url, {"Accept": "application/json"}, TIMEOUTS, False)
    return resp.status, resp.data


def test_one_kept_alive_connection_carries_chunked_and_sized_answers() -> None:
    body = recorded()
    script = [chunked(body), answer(body), chunked(body, pieces=1)]
    with scripted([script]) as server:
        url = f"http://127.0.0.1:{server.port}"
        send = transport(url)
        assert [get(send, f"{url}/apis/batch/v1/namespaces/rec/jobs/done?a=1") for _ in script] == [(200, body)] * 3
    assert len(server.requests) == 1  # the trailers were read past: the next answer was read from the start
    first = server.requests[0][0].decode()
    assert first.startswith("GET /apis/batch/v1/namespaces/rec/jobs/done?a=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in first
    assert "Accept: application/json\r\n" in first
    assert "User-Agent: test\r\n" in first


def test_connections_the_answer_closes_are_not_reused() -> None:
    body = recorded()
    unsized = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + body  # ends with the connection
    with scripted([[answer(body, "Connection: close"), HOLD], [unsized], [answer(body), HOLD]]) as server:
        url = f"http://127.0.0.1:{server.port}"
        send = transport(url)
        assert [get(send, f"{url}/x") for _ in range(3)] == [(200, body)] * 3
        del send  # closes the last connection, which was kept alive
    assert [len(r) for r in server.requests] == [1, 1, 1]


def test_a_watch_gets_its_own_connection_and_leaves_the_kept_alive_one_in_place() -> None:
    body = recorded()
    with scripted([[answer(body), answer(body), HOLD], [chunked(body)]]) as server:
        url = f"http://127.0.0.1:{server.port}"
        send = transport(url)
        assert get(send, f"{url}/x") == (200, body)
        watch = send(f"{url}/x?watch=1", {}, TIMEOUTS, True)
        assert b"".join(watch.stream()) == body
        watch.release_conn()
        assert get(send, f"{url}/x") == (200, body)  # on the first connection again
        del send
    assert [len(r) for r in server.requests] == [2, 1]


def test_interim_answers_are_read_past_and_retry_after_is_kept() -> None:
    body = recorded()
    busy = answer(body, "Retry-After: 2", status="429 Too Many Requests")
    with scripted([[b"HTTP/1.1 100 Continue\r\n\r\n" + answer(body), busy]]) as server:
        url = f"http://127.0.0.1:{server.port}"
        send = transport(url)
        assert get(send, f"{url}/x") == (200, body)
        resp = send(f"{url}/x", {}, TIMEOUTS, False)
        assert (resp.status, resp.retry_after) == (429, "2")


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "not a header line"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 header lines"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", "IncompleteRead(2 bytes read, 98 more expected)"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length is not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n", "IncompleteRead(4 bytes read)"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdef\r\n0\r\n\r\n", "does not end where"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not a size"),
        (b"", "closed the connection without an answer"),
    ],
)
def test_a_broken_answer_is_an_unreachable_error_saying_what_broke(reply: bytes, says: str) -> None:
    with scripted([[reply]]) as server:
        url = f"http://127.0.0.1:{server.port}"
        with pytest.raises(
            errors.UnreachableError, match=r"cannot reach the API server at http://127\.0\.0\.1"
        ) as raised:
            get(transport(url), f"{url}/x")
    assert says in raised.value.message


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    with scripted([[answer(recorded())]]) as server:
        url = f"http://127.0.0.1:{server.port}"
        send = transport(url, {"Authorization": "Bearer abc\r\nX-Injected: yes"})
        with pytest.raises(errors.ConfigError, match="the Authorization header has a line break"):
            get(send, f"{url}/x")
        socket.create_connection(("127.0.0.1", server.port)).close()  # lets the server's accept return
    assert server.requests == [[]]


class Proxy:
    """An HTTP proxy on a real socket that opens CONNECT tunnels (or refuses them with `refuse`)."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse, self.asked = refuse, []  # type: list[str]
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        with self.listener:
            client, _ = self.listener.accept()
        with client, client.makefile("rb") as fp:
            head = read_head(fp).decode()
            self.asked.append(head.split("\r\n", 1)[0])
            if self.refuse:
                client.sendall(f"HTTP/1.1 {self.refuse}\r\nContent-Length: 0\r\n\r\n".encode())
                return
            authority = head.split()[1]
            host, _, port = authority.rpartition(":")
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=relay, args=(upstream, client), daemon=True)
                back.start()
                relay(client, upstream)
                back.join(10)


def relay(src: socket.socket, dst: socket.socket) -> None:
    while data := src.recv(65536):
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)


def test_https_through_a_proxy_goes_through_a_connect_tunnel(tls: tuple[Path, Path]) -> None:
    body = recorded()
    proxy = Proxy()
    with scripted([[answer(body)]], tls) as server:
        url = f"https://127.0.0.1:{server.port}"
        send = transport(url, ca_data=tls[0].read_bytes(), proxy_url=f"http://127.0.0.1:{proxy.port}")
        assert get(send, f"{url}/apis/batch/v1/namespaces/rec/jobs/done") == (200, body)
        del send  # its kept-alive connection closes, and the tunnel with it
    proxy.thread.join(10)
    assert proxy.asked == [f"CONNECT 127.0.0.1:{server.port} HTTP/1.1"]
    assert server.requests[0][0].startswith(b"GET /apis/batch/v1/namespaces/rec/jobs/done HTTP/1.1\r\n")


def test_a_proxy_that_refuses_the_tunnel_is_an_unreachable_error(tls: tuple[Path, Path]) -> None:
    proxy = Proxy(refuse="407 Proxy Authentication Required")
    send = transport("https://127.0.0.1:6443", ca_data=tls[0].read_bytes(), proxy_url=f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(errors.UnreachableError, match=r"the proxy refused a tunnel to 127.0.0.1:6443: HTTP 407"):
        get(send, "https://127.0.0.1:6443/api")
    proxy.thread.join(10)


def test_plain_http_through_a_proxy_asks_for_the_absolute_uri() -> None:
    """The API server's name is never looked up: only the proxy, on loopback, is connected to."""
    body = recorded()
    with scripted([[answer(body)]]) as proxy:
        send = transport("http://api.cluster.invalid:8080", proxy_url=f"http://127.0.0.1:{proxy.port}")
        assert get(send, "http://api.cluster.invalid:8080/api?x=1") == (200, body)
    head = proxy.requests[0][0].decode()
    assert head.startswith("GET http://api.cluster.invalid:8080/api?x=1 HTTP/1.1\r\n")
    assert "Host: api.cluster.invalid:8080\r\n" in head
