"""The HTTP/1.1 front of ``cds-service serve``: one asyncio process reads each request in full, then hands it
to the worker pool (``workers.py``).

A slow or idle client costs a coroutine and a socket here, never an application thread: the header block
must arrive within ``HEADER_SECONDS`` of its first byte, a body within ``BODY_SECONDS``, and an idle
keep-alive connection is closed after ``IDLE_SECONDS``. Framing is checked strictly before any application
code runs: a malformed request line, header, Content-Length or chunk is a 400 OperationOutcome and one log
line (no traceback), a body over ``CDS_MAX_BODY_BYTES`` is a 413 (chunked or not), both close the connection.

Each of these limits is an ``asyncio.timeout`` scope, not ``asyncio.wait_for``, which in Python 3.11 runs the
read it guards as a task of its own: with four of them a request, the front spent 843,000 instructions a request
(callgrind, the typical body, baseline app) against 660,000 with scopes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cds_hooks.errors import operation_outcome
from .workers import Pool, Reply, Request, WorkerGone

log = logging.getLogger(__name__)
IDLE_SECONDS = 15.0
HEADER_SECONDS = 10.0
BODY_SECONDS = 30.0
REQUEST_SECONDS = 30.0
MAX_HEADER_BYTES = 32 * 1024
MAX_CONNECTIONS = 2048
TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
CHUNK_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,16}$")
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control characters other than HTAB (regex: C speed)
TARGET_BAD = re.compile(rb"[\x00-\x20\x7f]")
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout",
           413: "Content Too Large", 431: "Request Header Fields Too Large", 501: "Not Implemented",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
SAFE_HEADERS = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]


class Framing(Exception):
    """The bytes on the wire are not a request we can read; answered here, the connection then closed."""

    def __init__(self, status: int, message: str, field: str = "(request)") -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass
class Head:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


def parse_head(raw: bytes) -> Head:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not TOKEN.match(parts[0]) or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise Framing(400, "malformed request line")
    target = parts[1]
    if not (target.startswith(b"/") or target == b"*") or TARGET_BAD.search(target):
        raise Framing(400, "malformed request target")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.match(name):
            raise Framing(400, "malformed header line")
        value = value.strip(b" \t")
        if CONTROL.search(value):
            raise Framing(400, f"control character in header {name.decode()!r}")
        headers.append((name.decode("ascii"), value.decode("latin-1")))
    return Head(parts[0].decode(), target.decode("latin-1"), parts[2].decode(), headers)


async def read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    """RFC 9112 7.1, strictly: hex size, extensions without control characters, CRLF after each chunk's data."""
    body = bytearray()
    while True:
        line = await _line(reader)
        size_text, _, extension = line.partition(b";")
        if not CHUNK_SIZE.match(size_text.strip(b" \t")):
            raise Framing(400, "malformed chunk size", "(chunked body)")
        if CONTROL.search(extension):
            raise Framing(400, "control character in a chunk extension", "(chunked body)")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise Framing(413, f"request body larger than {limit} bytes", "(body)")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise Framing(400, "chunk data longer than its declared size", "(chunked body)")
    while await _line(reader):  # trailer fields, ignored, up to the empty line
        pass
    return bytes(body)


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\r\n"))[:-2]
    except asyncio.LimitOverrunError as exc:
        raise Framing(400, "line too long in a chunked body", "(chunked body)") from exc


async def read_body(head: Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int) -> bytes:
    encodings = [e.strip().lower() for v in head.get("transfer-encoding") for e in v.split(",")]
    lengths = head.get("content-length")
    if encodings and lengths:
        raise Framing(400, "both Transfer-Encoding and Content-Length", "Content-Length")
    if encodings and encodings != ["chunked"]:
        raise Framing(501 if "chunked" not in encodings else 400, "only Transfer-Encoding: chunked is supported",
                      "Transfer-Encoding")
    if len(set(lengths)) > 1 or (lengths and not lengths[0].isdigit()) or (lengths and len(lengths[0]) > 18):
        raise Framing(400, "malformed Content-Length", "Content-Length")
    length = int(lengths[0]) if lengths else 0
    if length > limit:
        raise Framing(413, f"request body larger than {limit} bytes", "(body)")
    if (encodings or length) and any(v.lower() == "100-continue" for v in head.get("expect")):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if not (encodings or length):
        return b""
    async with asyncio.timeout(BODY_SECONDS):
        return await (read_chunked(reader, limit) if encodings else reader.readexactly(length))


def render(reply: Reply, keep_alive: bool, head_only: bool) -> bytes:
    code = int(reply.status.split(" ", 1)[0])
    lines = [f"HTTP/1.1 {reply.status}"]
    for name, value in reply.headers:
        if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
            lines.append(f"{name}: {value}")
    if code >= 200 and code not in (204, 304):
        lines.append(f"Content-Length: {len(reply.body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + reply.body


def outcome_reply(status: int, message: str, field: str, code: str = "invalid") -> Reply:
    body = json.dumps(operation_outcome(message, code=code, field=field)).encode()
    return Reply(f"{status} {REASONS.get(status, 'Error')}", [("Content-Type", "application/json"),
                                                             *SAFE_HEADERS], body)


class Front:
    """Listeners plus the pool; ``serve_forever`` runs until SIGTERM/SIGINT, then drains in-flight requests."""

    def __init__(self, pool: Pool, max_body: int) -> None:
        self.pool, self.max_body = pool, max_body
        self.connections = 0
        self.fds: set[int] = set()  # listeners and client connections (closed in re-forked workers)
        pool.front_fds = lambda: list(self.fds)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: str) -> None:
        self.connections += 1
        fd = writer.get_extra_info("socket").fileno()
        self.fds.add(fd)
        peer = (writer.get_extra_info("peername") or ("", 0))[0]
        server = writer.get_extra_info("sockname")[:2]
        try:
            if self.connections > MAX_CONNECTIONS:
                return
            while await self._one(reader, writer, peer, server, listener):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away or was too slow: nothing to answer
        finally:
            self.connections -= 1
            self.fds.discard(fd)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str,
                   server: tuple[str, int], listener: str) -> bool:
        async with asyncio.timeout(IDLE_SECONDS):
            first = await reader.read(1)
        if not first:
            return False
        try:
            try:
                async with asyncio.timeout(HEADER_SECONDS):
                    raw = first + await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise Framing(431, f"request header block larger than {MAX_HEADER_BYTES} bytes") from exc
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise Framing(400, "request ended inside its header block") from exc
                raise
            head = parse_head(raw)
            body = await read_body(head, reader, writer, self.max_body)
        except Framing as problem:
            log.warning("request rejected before the app", extra={"status": problem.status,
                                                                  "reason": problem.message})
            writer.write(render(outcome_reply(problem.status, problem.message, problem.field), False, False))
            await writer.drain()
            return False
        keep_alive = self._keep_alive(head)
        if listener == "metrics" and head.target.partition("?")[0] != "/metrics":
            writer.write(render(outcome_reply(404, "only /metrics is served here", "(path)", "not-found"),
                                keep_alive, False))
            await writer.drain()
            return keep_alive
        request = Request(head.method, head.target, head.headers, body, peer, server, listener)
        try:
            reply = await self.pool.call(request, REQUEST_SECONDS)
        except (TimeoutError, WorkerGone):
            log.error("request not answered by a worker", extra={"path": head.target.partition("?")[0][:200]})
            reply, keep_alive = outcome_reply(503, "service unavailable, try again", "(request)", "transient"), False
        writer.write(render(reply, keep_alive, head.method == "HEAD"))
        await writer.drain()
        return keep_alive

    @staticmethod
    def _keep_alive(head: Head) -> bool:
        tokens = {t.strip().lower() for v in head.get("connection") for t in v.split(",")}
        return "keep-alive" in tokens if head.version == "HTTP/1.0" else "close" not in tokens

    async def listen(self, host: str, port: int, listener: str = "main") -> asyncio.Server:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self.handle(reader, writer, listener)

        server = await asyncio.start_server(handler, host, port, limit=MAX_HEADER_BYTES, backlog=1024,
                                            reuse_address=True)
        self.fds.update(sock.fileno() for sock in server.sockets)
        return server


async def serve(front: Front, binds: list[tuple[str, int, str]], stop: asyncio.Event, grace: float,
                on_ready: Callable[[], None] = lambda: None) -> Any:
    """Start the pool and every listener, call ``on_ready`` (they accept connections now), wait for ``stop``,
    then close listeners and drain."""
    await front.pool.start()
    servers = [await front.listen(host, port, listener) for host, port, listener in binds]
    on_ready()
    await stop.wait()
    for server in servers:
        server.close()
    deadline = asyncio.get_running_loop().time() + grace
    while front.pool.in_flight and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    await front.pool.stop(grace)
