"""The metrics endpoint: GET /metrics and nothing else (every other path is 404, every
other method 501), so nobody mistakes the port for an API. Serves on one address only.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/metrics":
            self.send_error(404)
            return
        body = generate_latest(self.server.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # one line per scrape would drown the journal


def serve(registry: CollectorRegistry, address: str, port: int) -> ThreadingHTTPServer:
    """Bind now (OSError if the port is taken), serve in a daemon thread."""
    v6 = ipaddress.ip_address(address).version == 6
    httpd: _Server = (_Server6 if v6 else _Server)((address, port), _Handler)
    httpd.registry = registry
    threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True).start()
    return httpd
