"""How the API server reaches a node's kubelet (logs, stats, and later exec/attach/port-forward):
HTTPS to the node's InternalIP and status.daemonEndpoints.kubeletEndpoint.Port, presenting the
API server's kubelet client certificate (--kubelet-client-certificate/-key, as kube-apiserver
does) and verifying the kubelet's serving certificate against --kubelet-certificate-authority
when one is given (without one it is not verified, as kube-apiserver's default)."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import h11
import trio

from orchestrator.api import nodes
from orchestrator.apiserver import errors
from orchestrator.client.transport import Connection, ConnectionClosed

CONNECT_TIMEOUT_S = 3.0
CLIENT_CERT, CLIENT_KEY, CA = "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key", "ca.crt"


def _context(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if not ca:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context.check_hostname = False  # kubelets are addressed by IP; the CA is what vouches for them
    if cert and key:
        context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass
class KubeletClient:
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = _context(self.cert, self.key, self.ca)

    @classmethod
    def beside(cls, tls_cert: str, cert: str | None = None, key: str | None = None, ca: str | None = None) -> \
            KubeletClient:
        """Flags first; otherwise the files `ketch pki init` writes next to the API server's certificate."""
        directory = Path(tls_cert).parent
        if cert is None and (directory / CLIENT_CERT).is_file() and (directory / CLIENT_KEY).is_file():
            cert, key = str(directory / CLIENT_CERT), str(directory / CLIENT_KEY)
        if ca is None and (directory / CA).is_file():
            ca = str(directory / CA)
        return cls(cert, key, ca)

    async def open(self, node: dict, what: str) -> Connection:
        host, port = nodes.internal_ip(node), nodes.kubelet_port(node)
        name = node["metadata"]["name"]
        if not host:
            raise errors.unavailable(f'node "{name}" has no InternalIP: cannot reach its kubelet')
        connection = Connection(host, port, self.context)
        try:
            with trio.fail_after(CONNECT_TIMEOUT_S):
                await connection.open()
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as err:
            await connection.aclose()
            raise errors.unavailable(f'the kubelet of node "{name}" at {host}:{port} does not answer '
                                     f"({err or 'timed out'}): {what}") from None
        return connection

    async def get_json(self, node: dict, target: str, timeout_s: float = 5.0) -> dict:
        connection = await self.open(node, f"cannot read {target}")
        try:
            with trio.fail_after(timeout_s):
                code, _, body = await connection.request("GET", target, [("Accept", "application/json")])
        except (ConnectionClosed, trio.TooSlowError, h11.ProtocolError) as err:
            raise errors.unavailable(f'the kubelet of node "{node["metadata"]["name"]}" did not answer {target}: '
                                     f"{err or 'timed out'}") from None
        finally:
            await connection.aclose()
        if code != 200:
            raise kubelet_error(code, body, target)
        return json.loads(body)


def kubelet_error(code: int, body: bytes, target: str) -> errors.APIError:
    """The kubelet's own Status when it sent one (kubectl shows its message), else a plain error."""
    try:
        status = json.loads(body)
        if isinstance(status, dict) and status.get("kind") == "Status":
            return errors.APIError(code, status.get("reason") or "InternalError", status.get("message", ""))
    except ValueError:
        pass
    return errors.APIError(code, "InternalError", f"the kubelet answered {code} for {target}")
