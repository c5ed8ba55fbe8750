"""Command line: ``cds-service serve`` (same as ``python -m cds_service serve``) and the tool commands.

``serve`` runs the app under gunicorn (pre-fork workers with threads: a hook call spends most of its time
waiting on the FHIR server). It refuses a non-loopback bind without client authentication configured,
unless ``--allow-unauthenticated`` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def cmd_serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cds-service: cannot start: {exc}", file=sys.stderr)
        return 2
    if not settings.authentication_configured:
        if not is_loopback(args.host) and not args.allow_unauthenticated:
            print(f"cds-service: refusing to listen on {args.host} without client authentication "
                  "(set CDS_TRUSTED_ISSUERS_FILE, or pass --allow-unauthenticated for a local demo)",
                  file=sys.stderr)
            return 2
        print("cds-service: no trusted issuers configured: client JWTs are NOT checked", file=sys.stderr)
    prepare_metrics_dir(settings.data_dir)
    from .. import create_app  # only now: it imports prometheus_client, which reads PROMETHEUS_MULTIPROC_DIR

    try:
        # Fail fast, before forking, on a bad hook file, pack or setting; the workers build their own app, so
        # this one lets go of its threads and database connections before gunicorn forks.
        create_app(settings).extensions["cds"].close()
    except (ValueError, OSError) as exc:
        print(f"cds-service: cannot start: {exc}", file=sys.stderr)
        return 2

    class Server(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"{args.host}:{args.port}",
                "workers": args.workers or settings.workers,
                "worker_class": "gthread",
                "threads": args.threads,
                "timeout": 30,
                "graceful_timeout": 10,
                "accesslog": None,  # our own JSON logs record requests without patient data
                "errorlog": "-",
                "loglevel": "warning",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    print(f"cds-service: serving on http://{args.host}:{args.port}/cds-services", file=sys.stderr, flush=True)
    Server().run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description="Spine-order CDS Hooks service and its tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the CDS Hooks service under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=0, help="worker processes (default: CDS_WORKERS)")
    serve.add_argument("--threads", type=int, default=4, help="threads per worker")
    serve.add_argument("--allow-unauthenticated", action="store_true",
                       help="allow a non-loopback bind without client JWT checks (local demos only)")
    serve.set_defaults(func=cmd_serve)
    from . import coverage, report, scenarios

    scenarios.add_commands(commands)
    report.add_commands(commands)
    coverage.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
