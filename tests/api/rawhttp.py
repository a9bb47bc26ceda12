"""Plain HTTPS to an API server, for tests that must see exactly what the server sends."""

from __future__ import annotations

import http.client
import json
import ssl
from urllib.parse import urlparse


class Raw:
    """Plain HTTPS requests (no client library smoothing anything over)."""

    def __init__(self, plane, server: str | None = None, token: str | None = None) -> None:
        self.url = urlparse(server or plane.servers[0])
        self.context = ssl.create_default_context(cafile=str(plane.pki_dir / "ca.crt"))
        self.token = token or (plane.pki_dir / "tokens.csv").read_text().split(",")[0]

    def request(self, method: str, path: str, body: bytes | str | None = None,
                content_type: str = "application/json", accept: str = "application/json"):
        connection = http.client.HTTPSConnection(self.url.hostname, self.url.port, context=self.context, timeout=30)
        try:
            connection.request(method, path, body=body, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Accept": accept})
            response = connection.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            connection.close()


def status_of(data: bytes) -> dict:
    status = json.loads(data)
    assert status["kind"] == "Status" and status["status"] == "Failure"
    return status
