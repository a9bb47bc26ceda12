"""`ketch apiserver`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

import trio

log = logging.getLogger("ketch.apiserver")


def add_parser(subparsers) -> None:
    api = subparsers.add_parser("apiserver", help="serve the Kubernetes API on a kv cluster")
    api.add_argument("--kv-endpoints", default=os.environ.get("KETCH_KV_ENDPOINTS"),
                     help="HOST:PORT,... of the kv members' client ports")
    api.add_argument("--kv-token-file", default=os.environ.get("KETCH_KV_TOKEN_FILE"))
    api.add_argument("--bind", default="127.0.0.1:6443", help="HOST:PORT (default 127.0.0.1:6443)")
    api.add_argument("--tls-cert", required=True)
    api.add_argument("--tls-key", required=True)
    api.add_argument("--token-file", required=True, help="token,user,uid,\"groups\" per line (reread on change)")
    api.add_argument("--service-cidr", default="10.96.0.0/16")
    api.add_argument("--node-port-range", default="30000-32767")
    api.add_argument("--max-requests-inflight", type=int, default=400,
                     help="requests served at once (watches excluded); more get 429 with Retry-After")
    api.add_argument("--watch-bookmark-seconds", type=float, default=10.0,
                     help="a quiet watch that allows bookmarks gets one this often")
    api.add_argument("--kubelet-client-certificate", help="client certificate towards the kubelets (default: "
                     "apiserver-kubelet-client.crt beside --tls-cert, if there)")
    api.add_argument("--kubelet-client-key")
    api.add_argument("--kubelet-certificate-authority", help="CA of the kubelets' serving certificates (default: "
                     "ca.crt beside --tls-cert, if there; none: not verified)")
    api.add_argument("--service-account-key-file", help="ECDSA P-256 private key (PEM) that signs and checks "
                     "ServiceAccount tokens; every API server of a cluster needs the same one (default: sa.key "
                     "beside --tls-cert, if there; none: no tokens are issued, accepted or mounted into pods)")
    api.add_argument("--workers", type=int, default=0,
                     help="API server processes sharing the port (SO_REUSEPORT), each with its own watch cache "
                          "(default: the number of CPUs)")
    api.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for each worker
    api.set_defaults(func=run_apiserver)


class Config(Exception):
    pass


def _settings(args):
    from orchestrator.apiserver.server import Settings
    try:
        network = ipaddress.IPv4Network(args.service_cidr)
        low, _, high = args.node_port_range.partition("-")
        ports = (int(low), int(high))
    except ValueError as err:
        raise Config(f"--service-cidr or --node-port-range: {err}") from None
    if not 1 <= ports[0] <= ports[1] <= 65535:
        raise Config("--node-port-range must be LOW-HIGH within 1-65535")
    if args.max_requests_inflight < 1 or args.watch_bookmark_seconds <= 0:
        raise Config("--max-requests-inflight must be at least 1 and --watch-bookmark-seconds above 0")
    from orchestrator.apiserver.kubelet_client import KubeletClient
    try:
        kubelet = KubeletClient.beside(args.tls_cert, args.kubelet_client_certificate, args.kubelet_client_key,
                                       args.kubelet_certificate_authority)
    except (OSError, ValueError) as err:
        raise Config(f"--kubelet-client-certificate/-key or --kubelet-certificate-authority: {err}") from None
    return Settings(network, ports, args.max_requests_inflight, args.watch_bookmark_seconds, kubelet,
                    _service_account_key(args))


def _service_account_key(args):
    from orchestrator.apiserver.serviceaccounts import load_key
    given = args.service_account_key_file
    path = Path(given) if given else Path(args.tls_cert).parent / "sa.key"
    if not given and not path.is_file():
        log.warning("event=no_service_account_key detail=%r", "no --service-account-key-file and no sa.key beside "
                    "--tls-cert: service account tokens are not issued, accepted or mounted into pods")
        return None
    try:
        return load_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as err:
        raise Config(f"--service-account-key-file {path}: {err}") from None


def run_apiserver(args) -> int:
    from orchestrator.apiserver.auth import TokenFileError, load_tokens
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    try:
        if not args.kv_endpoints or not args.kv_token_file:
            raise Config("--kv-endpoints and --kv-token-file are required (or KETCH_KV_ENDPOINTS/KETCH_KV_TOKEN_FILE)")
        settings = _settings(args)
        tokens = load_tokens(Path(args.token_file))
        kv_token = Path(args.kv_token_file).read_text().split()[0]
        host, _, port = args.bind.rpartition(":")
        if not host or not port.isdigit():
            raise Config(f"--bind must be HOST:PORT, got {args.bind!r}")
        for path in (args.tls_cert, args.tls_key):
            if not Path(path).is_file():
                raise Config(f"no such file: {path}")
        workers = args.workers or os.cpu_count() or 1
        if workers < 1:
            raise Config("--workers must be at least 1")
    except (Config, TokenFileError, OSError, IndexError) as err:
        print(f"ketch apiserver: {err}", file=sys.stderr)
        return 2
    if workers > 1:
        from orchestrator.apiserver.workers import supervise
        argv = sys.argv[sys.argv.index("apiserver") + 1:] if "apiserver" in sys.argv else []
        return supervise(argv, workers)
    from kvstore.collector import keep_full_collections_short
    keep_full_collections_short()  # the watch cache is large, live and growing: full collections walk it
    trio.run(serve, args, settings, tokens, kv_token)
    return 0


async def _reload_tokens(server, path: Path) -> None:
    from orchestrator.apiserver.auth import TokenFileError, load_tokens
    seen = path.stat().st_mtime_ns
    while True:
        await trio.sleep(1)
        try:
            mtime = path.stat().st_mtime_ns
            if mtime != seen:
                server.tokens, seen = load_tokens(path), mtime
                log.info("event=tokens_reloaded users=%d", len(server.tokens))
        except (OSError, TokenFileError) as err:
            log.warning("event=tokens_reload_failed error=%s", err)


async def serve(args, settings, tokens, kv_token: str) -> None:
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve as hypercorn_serve

    from kvstore.client import KVClient
    from orchestrator.apiserver import one_write
    from orchestrator.apiserver.server import APIServer
    from orchestrator.apiserver.storage import Store

    one_write.install()

    async with KVClient(args.kv_endpoints.split(","), kv_token, timeout_s=10) as kv:
        store = Store(kv)
        server = APIServer(store, tokens, settings)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await server.ensure_default_namespaces()
            nursery.start_soon(_reload_tokens, server, Path(args.token_file))
            config = HypercornConfig()
            config.bind = [args.bind]
            config.certfile, config.keyfile = args.tls_cert, args.tls_key
            config.accesslog = None
            config.errorlog = logging.getLogger("ketch.apiserver.http")
            config.graceful_timeout = 1.0
            config.keep_alive_timeout = 75
            # Hypercorn closes a connection after 1,000 requests by default; Kubernetes' API server
            # keeps it (a component's connection carries millions): no TLS handshake every 1,000.
            config.keep_alive_max_requests = 2**31
            config.alpn_protocols = ["http/1.1"]
            # Hypercorn's ciphers (ECDHE + AES-GCM) at security level 0: busybox wget, what pods have,
            # offers ECDHE-ECDSA-AES128-GCM-SHA256 but no signature_algorithms extension, so by RFC
            # 5246 section 7.4.1.4.1 the key exchange must be signed with SHA-1, which OpenSSL 3 refuses
            # at its default level ("no shared cipher"). A lab trade: a client that offers no
            # signature algorithms may get a SHA-1-signed handshake; clients that send the extension
            # (kubectl, curl, Python) still get SHA-256 or TLS 1.3, whose suites this does not touch.
            config.ciphers = "ECDHE+AESGCM:@SECLEVEL=0"
            if args.reuse_port:
                config.workers = 2  # Hypercorn then binds with SO_REUSEPORT (it spawns nothing: we call serve)
            stop = trio.Event()
            token = trio.lowlevel.current_trio_token()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: token.run_sync_soon(stop.set))
            log.info("event=listening address=%s pid=%d", args.bind, os.getpid())
            await hypercorn_serve(server, config, shutdown_trigger=stop.wait)
            nursery.cancel_scope.cancel()
