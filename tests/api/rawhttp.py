"""Plain HTTPS to an API server, for tests that must see exactly what the server sends."""

from __future__ import annotations

import http.client
import json
import ssl
from urllib.parse import urlparse


class Raw:
    """Plain HTTPS requests (no client library smoothing anything over)."""

    def __init__(self, plane, server: str | None = None, token: str | None = None, keep_alive: bool = False) -> None:
        self.url = urlparse(server or plane.servers[0])
        self.context = ssl.create_default_context(cafile=str(plane.pki_dir / "ca.crt"))
        self.token = token or (plane.pki_dir / "tokens.csv").read_text().split(",")[0]
        self.keep_alive = keep_alive
        self.connection: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: bytes | str | None = None,
                content_type: str = "application/json", accept: str = "application/json"):
        """(status, headers with lowercase names, body). keep_alive: one connection for all requests."""
        connection = self.connection or http.client.HTTPSConnection(self.url.hostname, self.url.port,
                                                                   context=self.context, timeout=30)
        try:
            connection.request(method, path, body=body, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Accept": accept})
            response = connection.getresponse()
            data = response.read()
            headers = {}
            for name, value in response.getheaders():
                headers[name.lower()] = f"{headers[name.lower()]}, {value}" if name.lower() in headers else value
            self.connection = connection if self.keep_alive else None
            return response.status, headers, data
        except Exception:
            self.connection = None
            connection.close()
            raise
        finally:
            if not self.keep_alive:
                connection.close()


def status_of(data: bytes) -> dict:
    status = json.loads(data)
    assert status["kind"] == "Status" and status["status"] == "Failure"
    return status
