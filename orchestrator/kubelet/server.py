"""The kubelet's HTTPS server (adapter): /healthz, /metrics, /pods, /stats/summary,
/containerLogs/{ns}/{pod}/{container}, and the mount point of the streaming endpoints
(/exec, /attach, /portForward, /run: contract D's ASGI app).

Who may call (the kubelet's authentication and authorization, simplified):
- a TLS client certificate that --client-ca verifies, whose subject is the API server's kubelet
  client (CN kube-apiserver-kubelet-client) or in the group system:masters;
- or a bearer token from --auth-token-file.
No credential: 401; a verified certificate of anyone else: 403; both as Status objects. /healthz
answers anyone (the kubelet's separate healthz port does the same).
Hypercorn does not show the client certificate to the app: the TLS object records it in a
context variable when the handshake completes, and the connection's tasks inherit it.
"""

from __future__ import annotations

import contextvars
import datetime
import hmac
import ipaddress
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import trio
from hypercorn.config import Config as HypercornConfig
from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.api import pods
from orchestrator.kubelet import crilog, hostfacts, stats
from orchestrator.kubelet.logserve import stream_log
from orchestrator.kubelet.model import RUNNING
from orchestrator.metrics import answer_lifespan

log = logging.getLogger("ketch.kubelet.server")
PEER: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ketch_kubelet_peer", default=None)
API_SERVER_CLIENT = "kube-apiserver-kubelet-client"
STREAM_PREFIXES = ("/exec/", "/attach/", "/portForward/", "/run/")


class _PeerRecordingSSLObject(ssl.SSLObject):
    def do_handshake(self) -> None:
        super().do_handshake()
        PEER.set(self.getpeercert() or None)


def server_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL  # a certificate is checked when offered; tokens need none
    context.sslobject_class = _PeerRecordingSSLObject
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Config(HypercornConfig):
    ssl_context_override: ssl.SSLContext | None = None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self.ssl_context_override or super().create_ssl_context()


def self_signed(directory: Path, node_name: str, node_ip: str) -> tuple[str, str]:
    """The kubelet's own serving certificate when none is given (as the kubelet makes one)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    if cert_path.exists() and key_path.exists():
        return str(cert_path), str(key_path)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@{int(time.time())}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName(node_name)]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(node_ip)))
    except ValueError:
        pass
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(names), critical=False).sign(key, hashes.SHA256()))
    fd = key_path.open("wb")
    key_path.chmod(0o600)
    with fd:
        fd.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


def load_tokens(path: str | None) -> set[str]:
    """One token per line, or Kubernetes' static token CSV (the first column); # comments."""
    if not path:
        return set()
    tokens = set()
    for line in Path(path).read_text().splitlines():
        token = line.split(",")[0].strip()
        if token and not token.startswith("#"):
            tokens.add(token)
    return tokens


@dataclass
class Access:
    tokens: set[str] = field(default_factory=set)
    common_names: tuple[str, ...] = (API_SERVER_CLIENT,)
    groups: tuple[str, ...] = ("system:masters",)

    def decide(self, authorization: str, peer: dict | None) -> int:
        """200 allowed, 401 no credential, 403 a credential that may not use the kubelet."""
        if authorization.startswith("Bearer "):
            offered = authorization[len("Bearer "):].strip().encode()
            if any(hmac.compare_digest(t.encode(), offered) for t in self.tokens):
                return 200
            return 401
        if peer is None:
            return 401
        subject = {k: v for rdn in peer.get("subject", ()) for k, v in rdn}
        organizations = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "organizationName"]
        if subject.get("commonName") in self.common_names or set(organizations) & set(self.groups):
            return 200
        return 403


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class KubeletServer:
    """The ASGI app. streams: contract D's app for exec/attach/portForward (None until it lands)."""

    def __init__(self, kubelet, access: Access, streams=None) -> None:
        self.k, self.access, self.streams = kubelet, access, streams
        self.rates = stats.RateTracker()
        self.started = time.time()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await answer_lifespan(receive, send)
        path = scope.get("path", "")
        if path == "/healthz":
            return await self.reply(send, 200, b"ok", "text/plain")
        headers = {k.decode().lower(): v.decode(errors="replace") for k, v in scope.get("headers", [])}
        decision = self.access.decide(headers.get("authorization", ""), PEER.get())
        if decision != 200:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            reason, message = ("Unauthorized", "Unauthorized") if decision == 401 else \
                ("Forbidden", "this client may not use the kubelet's API")
            return await self.json(send, decision, status(decision, reason, message))
        if path.startswith(STREAM_PREFIXES):
            return await self.stream(scope, receive, send)
        if scope["type"] != "http":
            return
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        try:
            if path == "/metrics":
                return await self.reply(send, 200, self.k.metrics.text().encode(), CONTENT_TYPE_LATEST)
            if path == "/pods":
                return await self.json(send, 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                                   "items": self.k.pods.items()})
            if path == "/stats/summary":
                return await self.json(send, 200, await self.summary())
            if path.startswith("/containerLogs/"):
                return await self.logs(send, path, query)
        except crilog.LogOptionsError as err:
            return await self.json(send, 400, status(400, "BadRequest", str(err)))
        await self.json(send, 404, status(404, "NotFound", f"the kubelet has no {path}"))

    # --- answers ------------------------------------------------------------------------------------

    @staticmethod
    async def reply(send, code: int, body: bytes, content_type: str) -> None:
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def json(self, send, code: int, body: dict) -> None:
        await self.reply(send, code, json.dumps(body).encode(), "application/json")

    async def stream(self, scope, receive, send) -> None:
        if self.streams is not None:
            return await self.streams(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1011})
        await self.json(send, 501, status(501, "NotImplemented", "exec, attach and port-forward are not served by "
                                          "this kubelet yet (the streaming module is not installed)"))

    # --- logs ---------------------------------------------------------------------------------------

    async def logs(self, send, path: str, query: dict[str, str]) -> None:
        parts = path.split("/")
        if len(parts) != 5 or not all(parts[2:]):
            return await self.json(send, 400, status(400, "BadRequest", "expected /containerLogs/NS/POD/CONTAINER"))
        namespace, name, container = parts[2:]
        options = crilog.parse_options(query, time.time())
        pod = self.k.pods.get(f"{namespace}/{name}")
        if pod is None:
            return await self.json(send, 404, status(404, "NotFound", f'pods "{name}" not found'))
        if container not in [c.get("name") for c in pods.every_container(pod)]:
            return await self.json(send, 400, status(400, "BadRequest",
                                                     f'container "{container}" in pod "{name}" is not valid'))
        attempts = sorted((c for c in self.k.cache.of(pod["metadata"]["uid"]) if c.name == container),
                          key=lambda c: c.attempt)
        if options.previous:
            if len(attempts) < 2:
                return await self.json(send, 400, status(400, "BadRequest", f'previous terminated container '
                                                         f'"{container}" in pod "{name}" not found'))
            target = attempts[-2]
        elif not attempts:
            return await self.json(send, 400, status(400, "BadRequest", f'container "{container}" in pod "{name}" '
                                                     "is waiting to start: ContainerCreating"))
        else:
            target = attempts[-1]

        def running() -> bool:
            current = self.k.cache.by_id.get(target.id)
            return current is not None and current.state == RUNNING
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked")]})
        try:
            async for piece in stream_log(target.log_path, options, running):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        finally:
            with trio.CancelScope(shield=True):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    # --- stats ----------------------------------------------------------------------------------------

    async def summary(self) -> dict:
        samples = []
        for uid, containers in list(self.k.cache.by_pod.items()):
            running = {c.name for c in containers if c.state == RUNNING}
            record = self.k.records.get(uid)
            pod = record.pod if record else None
            if not running or pod is None:
                continue
            try:
                usage = await self.k.runtime_call("usage", uid)
            except Exception as err:  # noqa: BLE001 - a pod whose figures cannot be read is left out
                log.info("event=usage_failed pod=%s error=%s", uid, err)
                continue
            figures = {name: stats.Sample(int(getattr(u, "cpu_usage_ns", 0)),
                                          int(getattr(u, "memory_working_set_bytes", 0)))
                       for name, u in usage.items() if name in running}
            meta = pod["metadata"]
            samples.append(stats.PodSample(meta["name"], meta["namespace"], uid,
                                           (pod.get("status") or {}).get("startTime", ""), figures))
        node = await trio.to_thread.run_sync(hostfacts.node_sample)
        return stats.summary(self.k.settings.node_name, datetime.datetime.fromtimestamp(
            self.started, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), node, self.k.facts.memory_bytes,
            samples, self.rates, time.time())


async def serve(app, bind: str, context: ssl.SSLContext, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    from hypercorn.trio import serve as hypercorn_serve
    config = _Config()
    config.bind = [bind]
    config.certfile = config.keyfile = "unused"  # makes Hypercorn serve TLS; the context comes from override
    config.ssl_context_override = context
    config.accesslog = None
    config.errorlog = logging.getLogger("ketch.kubelet.http")
    config.graceful_timeout = 1.0
    await hypercorn_serve(app, config, task_status=task_status)
