"""Command line: ``cds-service serve`` (same as ``python -m cds_service serve``) and the tool commands.

``serve`` runs an asyncio front (``front.py``) that reads every request in full and hands it to the least busy
of the pre-forked worker processes (``workers.py``: in each, one thread runs the calls in order, and a call
waiting on the FHIR server lets another thread take the next ones). ``--server gunicorn`` keeps the previous
gunicorn gthread stack for comparison. It refuses a non-loopback bind without client authentication configured,
unless ``--allow-unauthenticated`` is given, and refuses trusted issuers without ``CDS_PUBLIC_BASE_URL`` unless
``--trust-host-header``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..settings import SettingsError, is_loopback, load_settings


def prepare_metrics_dir(data_dir: str) -> None:
    """prometheus_client picks in-memory or per-process-file values when first imported: give the gunicorn
    workers a fresh shared directory before anything imports it (an operator's own setting is kept)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    path = Path(data_dir).resolve() / "prometheus"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, in one line, or None. Checked before gunicorn starts: gunicorn
    retries a busy port five times, logging each, and answers a bad port or host with a traceback."""
    if not 1 <= port <= 65535:
        return f"--port must be 1-65535, got {port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve --host {host!r}: {exc}"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no obstacle
        try:
            sock.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cds-service: cannot start: {exc}", file=sys.stderr)
        return 2
    if settings.call_deadline <= settings.fhir_budget:
        print(f"cds-service: refusing to start: CDS_CALL_DEADLINE ({settings.call_deadline:g} s) must be longer "
              f"than CDS_FHIR_BUDGET ({settings.fhir_budget:g} s): a call that needed its whole FHIR budget would "
              "always end 'not checked in time' (raise CDS_CALL_DEADLINE)", file=sys.stderr)
        return 2
    if settings.authentication_configured and not settings.public_base_url and not args.trust_host_header:
        print("cds-service: refusing to start: trusted issuers are configured but CDS_PUBLIC_BASE_URL is empty, "
              "so a JWT's aud would be checked against the client's own Host header (set CDS_PUBLIC_BASE_URL, "
              "or pass --trust-host-header for development)", file=sys.stderr)
        return 2
    if not settings.authentication_configured:
        if not is_loopback(args.host) and not args.allow_unauthenticated:
            print(f"cds-service: refusing to listen on {args.host} without client authentication "
                  "(set CDS_TRUSTED_ISSUERS_FILE, or pass --allow-unauthenticated for a local demo)",
                  file=sys.stderr)
            return 2
    problem = bind_problem(args.host, args.port)
    if problem:
        print(f"cds-service: cannot start: {problem}", file=sys.stderr)
        return 2
    prepare_metrics_dir(settings.data_dir)
    from .. import create_app  # only now: it imports prometheus_client, which reads PROMETHEUS_MULTIPROC_DIR

    try:
        # Fail fast, before forking, on a bad hook file, pack or setting; the workers build their own app, so
        # this one lets go of its threads and database connections before gunicorn forks.
        create_app(settings).extensions["cds"].close()
    except (ValueError, LookupError, OSError) as exc:  # LookupError: an unknown CDS_CRITERIA pack
        print(f"cds-service: cannot start: {exc.args[0] if isinstance(exc, LookupError) else exc}", file=sys.stderr)
        return 2
    if not settings.authentication_configured:
        print("cds-service: no trusted issuers configured: client JWTs are NOT checked", file=sys.stderr)
    shown_host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host  # IPv6
    url = f"http://{shown_host}:{args.port}/cds-services"
    if args.server in {"gunicorn", "gevent"}:
        return serve_gunicorn(args, settings, create_app, url)
    return serve_front(args, settings, create_app, url)


# Design choice, measured (docs/performance-deployment.md, round 6): Python's default is 700.
YOUNG_COLLECTION_EVERY = 20_000  # container allocations between two collections of the youngest generation


def frozen(app: Any) -> Any:
    """A worker's start-up heap (data files, schemas, models) lives as long as the process: frozen, it is no
    longer walked by every full collection a large request's allocations trigger (a third of the time of an
    8,000-resource call went there). And the youngest generation is collected every ``YOUNG_COLLECTION_EVERY``
    allocations: a large call allocates millions of containers that live until its answer, and every tenth
    collection of a generation collects the next, so full walks of the call's heap came 28 times as often
    (8,000 Conditions: 8 % less CPU in-process; a typical call is unchanged: it stays below the threshold)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
    return app


def serve_front(args: argparse.Namespace, settings: Any, create_app: Any, url: str) -> int:
    import asyncio
    import signal

    from .front import Front, serve
    from .workers import Pool

    binds = [(args.host, args.port, "main")]
    if settings.metrics_bind:
        host, _, port = settings.metrics_bind.rpartition(":")
        binds.append((host.strip("[]") or "127.0.0.1", int(port), "metrics"))
    pool = Pool(args.workers or settings.workers, args.threads, lambda: frozen(create_app(settings)))
    front = Front(pool, settings.max_body_bytes)

    async def main() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await serve(front, binds, stop, grace=10.0,  # "serving on" only once the port is bound
                    on_ready=lambda: print(f"cds-service: serving on {url}", file=sys.stderr, flush=True))

    asyncio.run(main())
    return 0


def serve_gunicorn(args: argparse.Namespace, settings: Any, create_app: Any, url: str) -> int:
    """The previous stack (gunicorn gthread), kept only to measure the front against it (bench/slow_clients.py)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"{args.host}:{args.port}",
                "workers": args.workers or settings.workers,
                "worker_class": "gevent" if args.server == "gevent" else "gthread",
                "threads": args.threads,
                "timeout": 30,
                "graceful_timeout": 10,
                "accesslog": None,  # our own JSON logs record requests without patient data
                "errorlog": "-",
                "loglevel": "warning",
                # printed once the listening socket is bound, before the workers start
                "when_ready": lambda _arbiter: print(f"cds-service: serving on {url}", file=sys.stderr, flush=True),
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return frozen(create_app(settings))

    Server().run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description="Spine-order CDS Hooks service and its tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the CDS Hooks service (asyncio front + worker processes)",
                                description="Run the CDS Hooks service: an asyncio front reads each request in "
                                "full, then hands it to the least busy worker process. Settings come from "
                                "CDS_* environment variables (README.md, Settings).")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on; a non-loopback one needs CDS_TRUSTED_ISSUERS_FILE "
                       "(default: %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port, 1-65535 (default: %(default)s)")
    serve.add_argument("--workers", type=int, default=0, help="worker processes (default: CDS_WORKERS, 2)")
    serve.add_argument("--threads", type=int, default=4,
                       help="calls one worker holds at once: one computes, the others wait on the network or are "
                       "large (default: %(default)s)")
    serve.add_argument("--allow-unauthenticated", action="store_true",
                       help="allow a non-loopback bind without client JWT checks (local demos only)")
    serve.add_argument("--trust-host-header", action="store_true",
                       help="with trusted issuers but no CDS_PUBLIC_BASE_URL, check JWT aud against the Host header "
                            "(development only: a forged Host would pass)")
    serve.add_argument("--server", choices=("front", "gunicorn", "gevent"), default="front",
                       help="front (default): requests read in full, then spread per request over the workers; "
                            "gunicorn: the previous gthread stack; gevent: gunicorn gevent workers (gevent must "
                            "be installed); both for comparison only (bench/serving.py)")
    serve.set_defaults(func=cmd_serve)
    from . import coverage, report, scenarios

    scenarios.add_commands(commands)
    report.add_commands(commands)
    coverage.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
