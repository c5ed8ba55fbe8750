"""Worker processes that run the WSGI app on whole, already-read requests, and the pool that spreads them.

Why not gunicorn's own workers: a gunicorn worker owns the connections it accepted, so a thread blocked on a
slow client is lost to everyone (eight slow-header clients took the service down), and keep-alive
connections stick to the worker that accepted them (4 persistent connections landed on one worker in 3 of 6
starts, one core idle). Here the front (``front.py``) reads every request in full, and the pool hands each
request to the least busy worker: no application thread ever waits on a client, and the work spreads over the
cores whatever the connections do. Large calls (``LARGE_BODY_BYTES``) take turns, one per worker, so a burst
of them cannot hold every worker's interpreter lock while an ordinary call waits.

Frames on the socketpair between the front and a worker: 4-byte big-endian length + pickle. The channel is
private to our own processes (created before the fork, never on the network), so pickle is safe here.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from .. import waits
from .heap import fix_heap_thresholds

log = logging.getLogger(__name__)
HEADER = struct.Struct("!I")


@dataclass
class Request:
    """One complete request as the front read it (body de-chunked)."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    peer: str
    server: tuple[str, int]
    listener: str = "main"  # "metrics" when it came in on the separate metrics bind


@dataclass
class Reply:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


def wsgi_environ(request: Request) -> dict[str, Any]:
    """PEP 3333 environ; header names with ``_`` are dropped (they would alias ``-`` ones, as gunicorn does)."""
    path, _, query = request.target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "SERVER_NAME": request.server[0], "SERVER_PORT": str(request.server[1]), "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": request.peer, "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.input_terminated": True, "cds.listener": request.listener,
        "cds.body": request.body,  # read in full and held to CDS_MAX_BODY_BYTES by the front (web.request_body)
    }
    for name, value in request.headers:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key in {"CONTENT_LENGTH", "TRANSFER_ENCODING"}:  # the front de-chunked the body: its length is known
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_app(app: Callable[..., Iterable[bytes]], request: Request, held: list[Any] | None = None) -> Reply:
    """Run the app on one request. ``held``: where the app may put what it no longer needs but should not free
    yet (``cds.held``, see ``web.free_after_answer``); the caller lets go of it once the answer is sent."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
        started.update(status=status, headers=headers)
        return lambda _data: None

    environ = wsgi_environ(request)
    if held is not None:
        environ["cds.held"] = held
    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Reply(started["status"], list(started["headers"]), body)


def run_call(app: Callable[..., Iterable[bytes]], request: Request, send: Callable[[Reply], None]) -> None:
    """Run one call and send its answer. What the app holds back (``held``: a call's parsed body, record index and
    facts, some 0.1 ms to free for a typical call) is freed as this returns, after the answer has left."""
    held: list[Any] = []
    try:
        reply = call_app(app, request, held)
    except Exception:  # the app turns its own errors into responses: this is a bug in the glue
        log.exception("worker could not run the request")
        reply = Reply("500 Internal Server Error", [("Content-Type", "text/plain")], b"internal error")
    try:
        send(reply)
    except OSError:
        pass  # the front is gone; nobody to answer


def send_frame(sock: socket.socket, payload: Any, lock: threading.Lock) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        sock.sendall(HEADER.pack(len(data)) + data)


def recv_exactly(sock: socket.socket, size: int) -> bytearray | None:
    """Read into one buffer of the final size: a list of chunks joined at the end held the body twice."""
    buffer = bytearray(size)
    with memoryview(buffer) as view:
        done = 0
        while done < size:
            received = sock.recv_into(view[done:], min(size - done, 1 << 20))
            if not received:
                return None
            done += received
    return buffer


def recv_request(sock: socket.socket) -> tuple[int, Request] | None:
    """The next frame from the front, or None once it is gone. The frame (a copy of the body) is let go on
    return, so only ``Request.body`` stays while the request runs."""
    head = recv_exactly(sock, HEADER.size)
    frame = recv_exactly(sock, HEADER.unpack(head)[0]) if head is not None else None
    if frame is None:
        return None
    return pickle.loads(frame)  # type: ignore[no-any-return]  # noqa: S301 (our own process, see the module docstring)


# A request body from this size on is a large call (an 8 MB prefetch takes a worker some 300 ms, most of it
# parsing JSON, which holds the interpreter lock). Design choice: each worker runs at most one large call at a
# time and the rest wait here, so an ordinary call shares a worker with at most one of them; measured with
# 8 concurrent 8 MB calls (bench/serving.py, neighbours): without it an ordinary call's p99 was 1.9-2.5 s.
LARGE_BODY_BYTES = 1 << 20


class Runners:
    """The worker's threads: one of them, the thread on duty, reads the next call from the front, runs it,
    answers it and reads the next, so calls that need no network run one after another on one thread and no
    other thread of the process wants the interpreter lock meanwhile. Measured (2 workers, concurrency 4, the
    typical call): with four threads sharing the lock per worker a quarter of a core stayed idle (each hand-off
    of the lock between threads leaves a core waiting a moment), with one a twentieth or less: 513-564 ->
    618-624 req/s, p99 15-17 -> 12 ms. A call about to wait on the network (``waits.py``) hands duty to a free
    thread and finishes alongside it; so does a large call (``LARGE_BODY_BYTES``) from its start, so an ordinary
    call never queues behind one. ``count`` bounds the calls a worker holds at once: the one on duty and those
    waiting or large."""

    def __init__(self, count: int, read: Callable[[], tuple[int, Request] | None],
                 run: Callable[[int, Request], None]) -> None:
        self._count, self._read, self._run = count, read, run  # read: the next call, None once the front is gone
        self._duty = threading.Semaphore(1)
        self._mine = threading.local()  # on_duty: this thread holds the duty
        self._stopping = False  # the front is gone (or SIGTERM): no call is read any more

    def serve(self) -> None:
        """Until the front goes away; every call already read is finished first."""
        waits.listen(self.hand_off)
        threads = [threading.Thread(target=self._serve, name=f"wsgi-{n}", daemon=True) for n in range(self._count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        waits.listen(None)

    def hand_off(self) -> None:
        """Called in a call's thread before it stops computing for a while: a free thread takes the duty."""
        if getattr(self._mine, "on_duty", False):
            self._mine.on_duty = False
            self._duty.release()

    def _serve(self) -> None:
        while True:
            self._duty.acquire()
            self._mine.on_duty = True
            while self._mine.on_duty:
                call = self._next()
                if call is None:
                    self._stopping = True
                    self.hand_off()  # the next thread to take duty finds it stopping too
                    return
                if len(call[1].body) >= LARGE_BODY_BYTES:
                    self.hand_off()
                try:
                    self._run(*call)
                except Exception:  # ``run`` answers the app's own errors; this keeps the duty alive past a bug
                    log.exception("worker could not run the request")
                del call  # a thread waiting for duty must not hold its last request (an 8 MB body) meanwhile

    def _next(self) -> tuple[int, Request] | None:
        if self._stopping:
            return None
        try:
            return self._read()
        except Exception:  # the channel to the front broke: nothing more can be read, so the worker ends
            log.exception("worker could not read from the front")
            return None


def worker_main(sock: socket.socket, make_app: Callable[[], Any], threads: int) -> None:
    """The worker: read frames, run each, answer in any order (``Runners``); ends when the front goes away or
    on SIGTERM (requests already read are finished first)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the front decides
    signal.signal(signal.SIGTERM, lambda *_: sock.shutdown(socket.SHUT_RD))
    fix_heap_thresholds()  # large buffers go back to the kernel, the JSON reader's block is reused (heap.py)
    app = make_app()
    lock = threading.Lock()

    def run(request_id: int, request: Request) -> None:
        run_call(app, request, lambda reply: send_frame(sock, (request_id, reply), lock))

    Runners(threads, lambda: recv_request(sock), run).serve()
    # The worker leaves with os._exit (no atexit): close the app's services here, so the audit rows still
    # queued are written and the database and FHIR connections are let go (a graceful stop loses nothing).
    services = getattr(app, "extensions", {}).get("cds")
    if services is not None:
        services.close()


@dataclass
class Worker:
    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    waiting: dict[int, asyncio.Future[Reply]] = field(default_factory=dict)
    large: int = 0  # large calls in flight (``LARGE_BODY_BYTES``): at most one


class WorkerGone(Exception):
    """The worker died with this request in flight."""


class Pool:
    """Forked workers; each request goes to the worker with the fewest requests in flight, an ordinary one
    preferring a worker with no large call; large calls take turns, one per worker.

    Ties go to the first worker, not in turn: when calls come one at a time, the same process (its caches warm)
    answers them. Measured at concurrency 1 (bench/run.py typical@1): alternating workers cost 5.9 ms of worker
    CPU a call against 3.8-4.4 ms with one worker, p50 6.4 -> 4.4 ms."""

    def __init__(self, count: int, threads: int, make_app: Callable[[], Any]) -> None:
        self.count, self.threads, self.make_app = count, threads, make_app
        self.large_turns = asyncio.Semaphore(count)  # one large call per worker at a time
        self.workers: list[Worker] = []
        self.ids = itertools.count()
        self.closing = False
        # File descriptors a re-forked worker must not keep (the front's listeners and client connections):
        # a copy held by a worker would keep a closed connection open for its client.
        self.front_fds: Callable[[], Iterable[int]] = lambda: ()

    async def start(self) -> None:
        for _ in range(self.count):
            self.workers.append(await self._spawn())

    async def _spawn(self) -> Worker:
        ours, theirs = socket.socketpair()
        inherited = list(self.front_fds())
        pid = os.fork()
        if pid == 0:  # the child: never returns into the front's event loop
            code = 0
            try:
                signal.set_wakeup_fd(-1)  # the front's loop pipe: a worker's signal must not wake the front
                for fd in inherited:
                    try:
                        os.close(fd)  # safe: the objects owning them are never finalised here (os._exit)
                    except OSError:
                        pass
                ours.close()
                worker_main(theirs, self.make_app, self.threads)
            except BaseException:
                log.exception("worker stopped on an error")
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours, limit=1 << 16)
        worker = Worker(pid, reader, writer)
        asyncio.get_running_loop().create_task(self._read_replies(worker))
        return worker

    async def _read_replies(self, worker: Worker) -> None:
        try:
            while True:
                head = await worker.reader.readexactly(HEADER.size)
                request_id, reply = pickle.loads(  # noqa: S301 (our own process, see the module docstring)
                    await worker.reader.readexactly(HEADER.unpack(head)[0]))
                future = worker.waiting.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (asyncio.IncompleteReadError, OSError):
            pass
        for future in worker.waiting.values():
            if not future.done():
                future.set_exception(WorkerGone())
        worker.waiting.clear()
        worker.writer.close()
        try:
            os.waitpid(worker.pid, 0)
        except ChildProcessError:
            pass
        if worker in self.workers:
            self.workers.remove(worker)
            if not self.closing:
                log.warning("worker exited; starting another", extra={"pid": worker.pid})
                self.workers.append(await self._spawn())

    def _pick(self) -> Worker:
        free = [w for w in self.workers if not w.large] or self.workers  # a large call waits for a free one
        least = min(len(w.waiting) for w in free)
        return next(w for w in free if len(w.waiting) == least)

    async def call(self, request: Request, timeout: float) -> Reply:
        if len(request.body) < LARGE_BODY_BYTES:
            return await self._send(request, timeout, large=False)
        async with asyncio.timeout(timeout):
            async with self.large_turns:
                return await self._send(request, timeout, large=True)

    async def _send(self, request: Request, timeout: float, large: bool) -> Reply:
        if not self.workers:
            raise WorkerGone()
        worker = self._pick()
        worker.large += large
        request_id = next(self.ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        worker.waiting[request_id] = future
        data = pickle.dumps((request_id, request), protocol=pickle.HIGHEST_PROTOCOL)
        worker.writer.write(HEADER.pack(len(data)) + data)
        try:
            async with asyncio.timeout(timeout):
                await worker.writer.drain()
                return await future
        finally:
            worker.waiting.pop(request_id, None)
            worker.large -= large

    @property
    def in_flight(self) -> int:
        return sum(len(w.waiting) for w in self.workers)

    async def stop(self, grace: float) -> None:
        """Workers finish what they hold (up to ``grace`` seconds), then are killed."""
        self.closing = True
        workers = list(self.workers)
        for worker in workers:
            try:
                os.kill(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = asyncio.get_running_loop().time() + grace
        while any(_alive(w.pid) for w in workers) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for worker in workers:
            if _alive(worker.pid):
                os.kill(worker.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0
