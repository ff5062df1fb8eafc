"""The transport: TLS and kept-alive HTTP/1.1 connections to one API server (http.client, ssl).

The only module that imports `ssl` and `http.client`. It sends a GET and
returns the status, the headers the client reads (Retry-After) and the body,
or a stream for a watch; a failure to connect or read is an UnreachableError.
A kept-alive connection the server closed meanwhile gets one fresh try.
"""

from __future__ import annotations

import os
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


def http_transport(target: Target, headers: dict[str, str], extra: JSON) -> Transport:
    """HTTP/1.1 over the standard library: one kept-alive connection per thread (the workers of a call).

    http.client instead of urllib3 keeps start-up short (docs/performance.md). An
    `https` server behind an HTTP proxy-url is reached through a CONNECT tunnel.
    """
    import http.client
    import threading
    import weakref

    parts = urlsplit(target.server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ConfigError(f"kubeconfig {target.source}: server {target.server} is not an http(s) URL")
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urlsplit(target.proxy_url) if target.proxy_url else None
    if proxy is not None and (proxy.scheme not in ("http", "https") or not proxy.hostname):
        raise errors.ConfigError(f"proxy-url {target.proxy_url}: only http:// proxies are supported")
    ctx = None
    if parts.scheme == "https":
        ctx = _ssl_context(target, extra.get("cert") or target.cert_data, extra.get("key") or target.key_data)
    server_name = target.tls_server_name or host
    local = threading.local()

    class TLSConnection(http.client.HTTPSConnection):
        """Verifies the server as tls-server-name, when the kubeconfig sets one."""

        def connect(self) -> None:
            http.client.HTTPConnection.connect(self)
            assert ctx is not None
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)

    def connection(timeout: float | None) -> http.client.HTTPConnection:
        where = (str(proxy.hostname), proxy.port or 80) if proxy else (host, port)
        conn: http.client.HTTPConnection
        if ctx is not None:
            conn = TLSConnection(*where, timeout=timeout, context=ctx)
            if proxy:
                conn.set_tunnel(host, port)
        else:
            conn = http.client.HTTPConnection(*where, timeout=timeout)
        return conn

    class Streamed:
        """A watch response, its body read in batches (`chunks`); its connection is not reused."""

        def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
            self.conn, self.resp, self.status = conn, resp, resp.status
            self.retry_after = resp.getheader("Retry-After")

        @property
        def data(self) -> bytes:
            return self.resp.read()

        def stream(self) -> Iterator[bytes]:
            sock = self.conn.sock
            try:
                if self.resp.chunked and sock is not None:  # as API servers send a watch
                    yield from chunks(self.resp.fp, lambda: waiting(sock))
                    return
                while data := self.resp.read1(STREAM_READ):  # a body that lasts until the connection closes
                    yield data
            except (OSError, http.client.HTTPException) as exc:
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
        for attempt in (1, 2):
            reused = not stream and getattr(local, "conn", None) is not None
            conn = local.conn if reused else connection(timeout[0])
            try:
                if conn.sock is None:
                    try:
                        conn.connect()
                    except TimeoutError:
                        conn.close()
                        handshake = " and TLS handshake" if ctx is not None else ""
                        raise errors.UnreachableError(
                            f"cannot reach the API server at {target.server}: "
                            f"no connection{handshake} within {timeout[0]:g}s"
                        ) from None
                    # A kept-alive connection lives in its worker thread's local storage: when the thread
                    # ends, its socket is closed, not left for the garbage collector to find open.
                    sock = conn.sock
                    assert sock is not None
                    weakref.finalize(conn, sock.close)
                conn.sock.settimeout(timeout[1])
                conn.request("GET", target_path, headers={**headers, **hdrs})
                resp = conn.getresponse()
                if stream:
                    return Streamed(conn, resp)
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                local.conn = None
                # A kept-alive connection the server closed meanwhile: one fresh try.
                if reused and attempt == 1 and isinstance(exc, (http.client.RemoteDisconnected, ConnectionError)):
                    continue
                raise unreachable(target.server, exc) from None
            if resp.will_close:
                conn.close()
                local.conn = None
            else:
                local.conn = conn
            return Read(resp.status, body, resp.getheader("Retry-After"))
        raise AssertionError("unreachable")

    return send


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

    Raises http.client.IncompleteRead when the body ends before its last chunk, and
    http.client.HTTPException when it is not chunked.
    """
    import http.client

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
                raise http.client.HTTPException("a chunk of the body does not end where its size says")
            yield rest[start:stop]
            at = stop + 2
        rest = rest[at:]
        if len(rest) > CHUNK_LINE and rest.find(b"\r\n") < 0:
            raise http.client.HTTPException("a chunk-size line of the body is too long")
        if not ready():
            pause(STREAM_BATCH)
        read = fp.readinto1(scratch)
        if not read:
            raise http.client.IncompleteRead(rest)
        rest += scratch[:read]


def _chunk_size(line: bytes) -> int:
    """A chunk-size line's size: hexadecimal digits, then extensions (`;name=value`), which are ignored."""
    import http.client

    digits = line.split(b";", 1)[0].strip()
    if not digits or digits.strip(b"0123456789abcdefABCDEF"):
        raise http.client.HTTPException(f"a chunk-size line of the body is not a size: {line[:40]!r}")
    return int(digits, 16)
