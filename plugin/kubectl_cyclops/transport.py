"""The transport: TLS and kept-alive HTTP/1.1 connections to one API server (socket, ssl).

The only module that imports `ssl` and speaks HTTP. It sends a GET and
returns the status, the headers the client reads (Retry-After) and the body,
or a stream for a watch; a failure to connect or read is an UnreachableError.
A kept-alive connection the server closed meanwhile gets one fresh try.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

from . import errors
from .kubeconfig import Target

JSON = dict[str, Any]
CONNECT_TIMEOUT = 10.0  # TCP connect plus TLS handshake, as kubectl's 10 s TLS handshake timeout
STREAM_READ = 1 << 16  # the most a watch's body is read at once
# After a watch's body was read up to what had come, the pause before it is read again (below 0.25 s, the
# interval at which --watch shows changes): the events that come meanwhile are read together.
STREAM_BATCH = 0.05
CHUNK_LINE = 1024  # the longest chunk-size line read (a size, and extensions)
HEAD_LINE = 65536  # the longest status or header line read, as http.client's
HEADERS = 100  # the most header lines an answer may have, as http.client's


class Response(Protocol):
    """What KubeApi reads of an HTTP response (a real one, or a recorded one in tests)."""

    status: int
    retry_after: str | None  # the Retry-After header, the one header the client reads

    @property
    def data(self) -> bytes: ...

    def stream(self) -> Iterator[bytes]: ...

    def release_conn(self) -> None: ...


# url, headers, (connect, read) timeouts, stream the body -> response; transport errors as UnreachableError
Transport = Callable[[str, dict[str, str], tuple[float | None, float | None], bool], Response]


def unreachable(host: str, exc: Exception) -> errors.UnreachableError:
    reason = getattr(exc, "reason", None) or exc
    text = " ".join(str(reason).split())
    if "Connection refused" in text:
        text = "connection refused"
    elif "timed out" in text.lower():
        text = "the request timed out (see --request-timeout)"
    return errors.UnreachableError(f"cannot reach the API server at {host}: {text}")


def _ssl_context(target: Target, cert: bytes | None, key: bytes | None) -> Any:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if target.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif target.ca_data:  # the kubeconfig's CA only, as kubectl: loading the system store too would slow every start
        try:
            ctx.load_verify_locations(cadata=target.ca_data.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise errors.ConfigError(f"kubeconfig {target.source}: unusable certificate-authority: {exc}") from None
    else:
        ctx.load_default_certs()
    if cert and key:
        try:
            _load_cert_chain(ctx, cert.rstrip(b"\n") + b"\n" + key)
        except ssl.SSLError as exc:
            raise errors.ConfigError(f"kubeconfig {target.source}: unusable client certificate: {exc}") from None
    return ctx


def _load_cert_chain(ctx: Any, pem: bytes) -> None:
    """ssl loads a client certificate and key from a path only: on Linux an anonymous memory file, so
    the key never reaches a file system; elsewhere a private file that lives for this call."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("kubectl-cyclops-client-cert", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb") as f:
                f.write(pem)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kubectl-cyclops-") as tmp:
        path = os.path.join(tmp, "client.pem")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(pem)
        ctx.load_cert_chain(path)


class ProtocolError(OSError):
    """An answer that is not HTTP/1.1 as this client reads it: a status line, headers, a body as they frame it."""


class IncompleteRead(ProtocolError):
    """A body that ended before the length its headers or chunks gave."""

    def __init__(self, got: int, more: int | None = None) -> None:
        super().__init__(f"IncompleteRead({got} bytes read" + (f", {more} more expected)" if more else ")"))


class Disconnected(ConnectionError):
    """The server closed the connection before any answer: a kept-alive connection it had closed meanwhile."""


class _Connection:
    """A socket (TLS for https) and the buffered reader its answers are read through."""

    __slots__ = ("fp", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fp = sock.makefile("rb")

    def close(self) -> None:
        self.fp.close()
        self.sock.close()

    # A kept-alive connection lives in its worker thread's local storage: when the thread ends, its socket is
    # closed, not left for the garbage collector to find open.
    __del__ = close


def _line(fp: Any, what: str, longest: int = HEAD_LINE) -> bytes:
    """One line of a head (a status line, a header, a chunk size), with its line break."""
    line: bytes = fp.readline(longest + 1)
    if len(line) > longest:
        raise ProtocolError(f"{what} of the answer is longer than {longest} bytes")
    return line


def _head(fp: Any) -> tuple[int, dict[str, str], bool]:
    """The status, the headers (lower-case names) and whether the connection stays open after the body.
    Interim answers (100 Continue, 103 Early Hints) are read past."""
    while True:
        line = _line(fp, "the status line")
        if not line:
            raise Disconnected("the server closed the connection without an answer")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP status line: {line[:60]!r}")
        headers: dict[str, str] = {}
        for _ in range(HEADERS + 1):
            header = _line(fp, "a header line")
            if header in (b"\r\n", b"\n"):
                break
            name, colon, value = header.decode("latin-1").partition(":")
            if not colon or not header.endswith(b"\n"):
                raise ProtocolError(f"not a header line: {header[:60]!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        else:
            raise ProtocolError(f"more than {HEADERS} header lines in the answer")
        status = int(code)
        if 100 <= status < 200 and status != 101:
            continue
        keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        return status, headers, keep


def _body(fp: Any, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The whole body, and whether its end was framed (chunks or Content-Length) rather than the connection's."""
    if status in (204, 304):
        return b"", True
    if _chunked(headers):
        return _read_chunked(fp), True
    length = headers.get("content-length")
    if length is None:
        return fp.read(), False  # until the server closes the connection
    if not length.isdigit():
        raise ProtocolError(f"Content-Length is not a number: {length[:40]!r}")
    data: bytes = fp.read(int(length))
    if len(data) < int(length):
        raise IncompleteRead(len(data), int(length) - len(data))
    return data, True


def _chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _read_chunked(fp: Any) -> bytes:
    """A chunked body whole, its trailers read past, so that the connection can carry the next answer."""
    parts: list[bytes] = []
    got = 0
    while True:
        line = _line(fp, "a chunk-size line", CHUNK_LINE)
        if not line.endswith(b"\n"):
            raise IncompleteRead(got)
        size = _chunk_size(line.rstrip(b"\r\n"))
        if size == 0:
            break
        data = fp.read(size + 2)
        if len(data) < size + 2:
            raise IncompleteRead(got + len(data), size + 2 - len(data))
        if data[-2:] != b"\r\n":
            raise ProtocolError("a chunk of the body does not end where its size says")
        parts.append(data[:-2])
        got += size
    while (trailer := _line(fp, "a trailer line")) not in (b"\r\n", b"\n"):
        if not trailer:
            raise IncompleteRead(got)
    return b"".join(parts)


def _request(target: str, host: str, headers: dict[str, str]) -> bytes:
    """A GET's request line and headers. A header with a line break (a kubeconfig's token, say) is refused:
    it would end the head early."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if any(c in value or c in name for c in "\r\n\0"):
            raise errors.ConfigError(f"the {name} header has a line break or a NUL in it")
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError as exc:
        raise errors.ConfigError(f"a request header is not Latin-1 text: {exc.reason}") from None


def _ascii(name: str) -> bytes | str:
    """A host name as bytes when it is ASCII: socket and ssl then skip the IDNA codec, and its import."""
    return name.encode("ascii") if name.isascii() else name


def http_transport(target: Target, headers: dict[str, str], extra: JSON) -> Transport:
    """HTTP/1.1 GETs over sockets: one kept-alive connection per thread (the workers of a call).

    Written on `socket` and `ssl` rather than http.client, whose import (of the email package) is about a
    tenth of a one-object call's start (docs/performance.md); a GET and its answer are all the API needs. An
    `https` server behind an HTTP proxy-url is reached through a CONNECT tunnel.
    """
    import threading

    parts = urlsplit(target.server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ConfigError(f"kubeconfig {target.source}: server {target.server} is not an http(s) URL")
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    host_header = parts.netloc.rpartition("@")[2]
    proxy = urlsplit(target.proxy_url) if target.proxy_url else None
    if proxy is not None and (proxy.scheme not in ("http", "https") or not proxy.hostname):
        raise errors.ConfigError(f"proxy-url {target.proxy_url}: only http:// proxies are supported")
    ctx = None
    if parts.scheme == "https":
        ctx = _ssl_context(target, extra.get("cert") or target.cert_data, extra.get("key") or target.key_data)
    server_name = _ascii(target.tls_server_name or host)
    local = threading.local()

    def connection(timeout: float | None) -> _Connection:
        where = (str(proxy.hostname), proxy.port or 80) if proxy else (host, port)
        sock = socket.create_connection((_ascii(where[0]), where[1]), timeout)  # type: ignore[arg-type]
        try:
            if proxy and ctx is not None:
                _tunnel(sock, authority)
            if ctx is not None:
                sock = ctx.wrap_socket(sock, server_hostname=server_name)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    class Streamed:
        """A watch response, its body read in batches (`chunks`); its connection is not reused."""

        def __init__(self, conn: _Connection, status: int, headers: dict[str, str]) -> None:
            self.conn, self.status, self.headers = conn, status, headers
            self.retry_after = headers.get("retry-after")

        @property
        def data(self) -> bytes:
            try:
                return _body(self.conn.fp, self.status, self.headers)[0]
            except OSError as exc:
                raise unreachable(target.server, exc) from None

        def stream(self) -> Iterator[bytes]:
            fp = self.conn.fp
            try:
                if _chunked(self.headers):  # as API servers send a watch
                    yield from chunks(fp, lambda: waiting(self.conn.sock))
                    return
                if "content-length" in self.headers:
                    yield _body(fp, self.status, self.headers)[0]
                    return
                while data := fp.read1(STREAM_READ):  # a body that lasts until the connection closes
                    yield data
            except OSError as exc:
                raise unreachable(target.server, exc) from None

        def release_conn(self) -> None:
            self.conn.close()

    class Read:
        def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
            self.status, self.data, self.retry_after = status, body, retry_after

        def stream(self) -> Iterator[bytes]:
            yield self.data

        def release_conn(self) -> None:
            pass

    def send(url: str, hdrs: dict[str, str], timeout: tuple[float | None, float | None], stream: bool) -> Response:
        u = urlsplit(url)
        target_path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        if proxy and ctx is None:
            target_path = url  # a plain-HTTP proxy takes the absolute URI
        request = _request(target_path, host_header, {**headers, **hdrs})
        for attempt in (1, 2):
            # A watch gets a connection of its own and leaves the thread's kept-alive one where it is.
            conn: _Connection | None = None if stream else local.__dict__.pop("conn", None)
            reused = conn is not None
            try:
                if conn is None:
                    try:
                        conn = connection(timeout[0])
                    except TimeoutError:
                        handshake = " and TLS handshake" if ctx is not None else ""
                        raise errors.UnreachableError(
                            f"cannot reach the API server at {target.server}: "
                            f"no connection{handshake} within {timeout[0]:g}s"
                        ) from None
                conn.sock.settimeout(timeout[1])
                conn.sock.sendall(request)
                status, answer, keep = _head(conn.fp)
                if stream:
                    return Streamed(conn, status, answer)
                body, framed = _body(conn.fp, status, answer)
            except OSError as exc:
                if conn is not None:
                    conn.close()
                # A kept-alive connection the server closed meanwhile: one fresh try.
                if reused and attempt == 1 and isinstance(exc, ConnectionError):
                    continue
                raise unreachable(target.server, exc) from None
            if keep and framed:
                local.conn = conn
            else:
                conn.close()
            return Read(status, body, answer.get("retry-after"))
        raise AssertionError("unreachable")

    return send


def _tunnel(sock: socket.socket, authority: str) -> None:
    """Ask an HTTP proxy for a tunnel to the API server (CONNECT); TLS then runs through it."""
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode("ascii"))
    with sock.makefile("rb") as fp:  # the proxy says nothing more until the client speaks TLS
        status, _, _ = _head(fp)
    if status != 200:
        raise ProtocolError(f"the proxy refused a tunnel to {authority}: HTTP {status}")


def waiting(sock: Any) -> bool:
    """Whether a read of the socket would answer at once: bytes TLS decrypted and not read yet, or bytes the
    kernel holds."""
    import select

    pending = getattr(sock, "pending", None)  # an ssl.SSLSocket's
    return bool(pending and pending()) or bool(select.select([sock], [], [], 0)[0])


def chunks(fp: Any, ready: Callable[[], bool], pause: Callable[[float], None] = time.sleep) -> Iterator[bytes]:
    """The data of each chunk of a chunked HTTP/1.1 body, read from `fp` (the response's buffered reader),
    until its last chunk. An API server flushes each watch event as a chunk of its own; this reads them in
    batches: once everything that came is handed on and nothing more is `ready`, the next read is
    STREAM_BATCH later, so that a busy watch wakes its thread once per batch rather than once per event
    (docs/performance.md). http.client's reader hands on one chunk per read, and cannot tell what is ready.

    Raises IncompleteRead when the body ends before its last chunk, and ProtocolError when it is not
    chunked.
    """
    scratch = memoryview(bytearray(STREAM_READ))
    rest = b""
    while True:
        at = 0
        while (line := rest.find(b"\r\n", at)) >= 0:
            size = _chunk_size(rest[at:line])
            start = line + 2
            stop = start + size
            if len(rest) < stop + 2:
                break
            if size == 0:
                return  # the last chunk: trailers, if any, are left unread with the connection
            if rest[stop : stop + 2] != b"\r\n":
                raise ProtocolError("a chunk of the body does not end where its size says")
            yield rest[start:stop]
            at = stop + 2
        rest = rest[at:]
        if len(rest) > CHUNK_LINE and rest.find(b"\r\n") < 0:
            raise ProtocolError("a chunk-size line of the body is too long")
        if not ready():
            pause(STREAM_BATCH)
        read = fp.readinto1(scratch)
        if not read:
            raise IncompleteRead(len(rest))
        rest += scratch[:read]


def _chunk_size(line: bytes) -> int:
    """A chunk-size line's size: hexadecimal digits, then extensions (`;name=value`), which are ignored."""
    digits = line.split(b";", 1)[0].strip()
    if not digits or digits.strip(b"0123456789abcdefABCDEF"):
        raise ProtocolError(f"a chunk-size line of the body is not a size: {line[:40]!r}")
    return int(digits, 16)
