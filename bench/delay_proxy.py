"""Loopback HTTP proxy that adds a fixed delay to every request: a FHIR server "far away" on loopback.

A real EHR's FHIR server is tens of milliseconds away; on loopback sekmet-fhir answers in about 1 ms,
which would hide whether the service's FHIR reads really run in parallel. Every GET waits ``--delay-ms``,
then is forwarded to the upstream base over a keep-alive connection (one per proxy thread). The upstream
base URL in response bodies (``fullUrl``, ``next`` links) is rewritten to the proxy's, as a real server
behind this address would write it, so the service follows paging links through the proxy too.

    python bench/delay_proxy.py --port 8091 --upstream http://127.0.0.1:8090/fhir --delay-ms 50
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def make_handler(upstream: str, public: str, delay_s: float) -> type[BaseHTTPRequestHandler]:
    parts = urlsplit(upstream)
    upstream_path = parts.path.rstrip("/")
    local = threading.local()
    old, new = upstream.rstrip("/").encode(), public.rstrip("/").encode()

    def connection() -> http.client.HTTPConnection:
        if getattr(local, "connection", None) is None:
            local.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        return local.connection

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the service's pooled connections stay open
        disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK would add 40 ms

        def do_GET(self) -> None:
            time.sleep(delay_s)
            path = upstream_path + self.path.removeprefix(urlsplit(public).path.rstrip("/"))
            headers = {k: v for k, v in self.headers.items() if k.lower() in {"accept", "authorization"}}
            try:
                conn = connection()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read().replace(old, new)
                status, content_type = response.status, response.getheader("Content-Type", "application/json")
            except (OSError, http.client.HTTPException) as exc:
                local.connection = None
                body, status, content_type = f"proxy: {type(exc).__name__}".encode(), 502, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silent: one log line per request would cost more than the request."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="upstream FHIR base URL, e.g. http://127.0.0.1:8090/fhir")
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()
    public = f"http://127.0.0.1:{args.port}{urlsplit(args.upstream).path}"
    ThreadingHTTPServer.request_queue_size = 128  # the default backlog of 5 would delay bursts of connects by 1 s
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.upstream, public, args.delay_ms / 1000))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
