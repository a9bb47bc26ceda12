"""`ketch dns`: the cluster DNS server (CoreDNS's role behind the kube-dns Service).

    ketch dns --kubeconfig K [--bind 0.0.0.0:53] [--metrics-bind 127.0.0.1:9153]
              [--cluster-domain cluster.local] [--upstream IP[:PORT] ...|none] [--resolv-conf /etc/resolv.conf]
              [--ttl 5]

Names outside the cluster domain go to --upstream servers (in order), or, without the flag, to the
nameservers of --resolv-conf (the node's own); `--upstream none` refuses them (a lab without a
way out). Both UDP and TCP listen on --bind; sockets are bound before anything else, so a busy
or forbidden port is a one-line error and exit status 1. Queries are answered once the
informers have listed Services and EndpointSlices (until then they wait in the socket buffer).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from pathlib import Path

log = logging.getLogger("ketch.dns")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("dns", help="serve cluster DNS (Service and pod names) over UDP and TCP")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--bind", default="0.0.0.0:53", help="IP:PORT for UDP and TCP (default 0.0.0.0:53)")
    parser.add_argument("--metrics-bind", default="127.0.0.1:9153",
                        help="IP:PORT for /metrics and /healthz ('' to turn off; default 127.0.0.1:9153)")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--upstream", action="append", default=None, metavar="IP[:PORT]",
                        help="where other names go (repeatable); 'none' refuses them")
    parser.add_argument("--resolv-conf", default="/etc/resolv.conf",
                        help="read the upstreams from this file when --upstream is not given")
    parser.add_argument("--ttl", type=int, default=5, help="TTL of the records, seconds (CoreDNS: 5)")
    parser.set_defaults(func=run_dns)


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """"IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address -> (ip, port)."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not IP:PORT")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        raise ValueError(f"{text!r} is not IP:PORT (an IP address is needed, not a name)") from None


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"{whole!r}: the port must be 0..65535")
    return int(text)


def nameservers(resolv_conf: str) -> list[str]:
    out = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and "%" not in words[1]:
            try:
                out.append(str(ipaddress.ip_address(words[1])))
            except ValueError:
                continue
    return out


def choose_upstreams(flags: list[str] | None, resolv_conf_path: str, bind: tuple[str, int]) -> list[tuple[str, int]]:
    """The upstreams from the flags, else from the resolv.conf file; never ourselves."""
    if flags:
        if [f.strip().lower() for f in flags] == ["none"]:
            return []
        upstreams = [parse_address(flag, 53) for flag in flags]
    else:
        try:
            text = Path(resolv_conf_path).read_text()
        except OSError:
            text = ""
        upstreams = [(ip, 53) for ip in nameservers(text)]
    host, port = bind

    def is_us(ip: str, upstream_port: int) -> bool:
        wildcard = ipaddress.ip_address(host).is_unspecified
        return upstream_port == port and (ip == host or (wildcard and ipaddress.ip_address(ip).is_loopback))
    return [(ip, p) for ip, p in upstreams if not is_us(ip, p)]


def bind_tcp(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return sock
    except OSError:
        sock.close()
        raise


def bind_sockets(host: str, port: int, attempts: int = 5) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port (port 0: one the kernel picks that is free for both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts):
        udp, tcp = socket.socket(family, socket.SOCK_DGRAM), None
        try:
            udp.bind((host, port))
            tcp = bind_tcp(host, udp.getsockname()[1])
            tcp.listen(128)
            return udp, tcp
        except OSError:
            udp.close()
            if tcp is not None:
                tcp.close()
            if port != 0:
                raise
    raise OSError(f"no port free for both UDP and TCP after {attempts} tries")


def run_dns(args) -> int:
    from orchestrator.client.component import run_component

    try:
        host, port = parse_address(args.bind, 53)
        upstreams = choose_upstreams(args.upstream, args.resolv_conf, (host, port))
        if args.metrics_bind:
            parse_address(args.metrics_bind, 9153)  # before anything is bound
        if not 0 <= args.ttl <= 3600:
            raise ValueError("--ttl must be 0..3600 seconds")
        domain = args.cluster_domain.strip(".").lower()
        if not domain:
            raise ValueError("--cluster-domain must not be empty")
    except ValueError as err:
        print(f"ketch dns: {err}", file=sys.stderr)
        return 2
    try:
        udp, tcp = bind_sockets(host, port)
    except OSError as err:
        print(f"ketch dns: cannot listen on {args.bind}: {err}", file=sys.stderr)
        return 1
    metrics = None
    if args.metrics_bind:
        try:
            metrics = f"fd://{bind_tcp(*parse_address(args.metrics_bind, 9153)).detach()}"  # Hypercorn takes it over
        except OSError as err:
            print(f"ketch dns: cannot serve metrics on {args.metrics_bind}: {err}", file=sys.stderr)
            return 1
    return run_component("dns", args.kubeconfig,
                         lambda api: serve(api, udp, tcp, upstreams, domain, args.ttl, metrics))


async def serve(api, udp: socket.socket, tcp: socket.socket, upstreams: list[tuple[str, int]], domain: str,
                ttl_s: int, metrics_bind: str | None) -> None:
    import trio

    from netproxy.dns.server import DNSServer, HealthRegistry, ServiceWatcher

    watchers: list[ServiceWatcher] = []
    registry = HealthRegistry(lambda: bool(watchers) and watchers[0].synced)
    server = DNSServer(upstreams=upstreams, ttl_s=ttl_s, registry=registry)
    watchers.append(ServiceWatcher(api, server, domain))
    async with trio.open_nursery() as nursery:
        if metrics_bind:
            await nursery.start(registry.serve, metrics_bind)
        await nursery.start(watchers[0].run)
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(tcp))
        await nursery.start(server.serve_udp, trio.socket.from_stdlib_socket(udp))
        nursery.start_soon(trio.serve_listeners, server.serve_tcp_connection, [listener])
        address = udp.getsockname()
        log.info("event=serving udp=%s:%s tcp=%s:%s domain=%s upstreams=%s", address[0], address[1], address[0],
                 address[1], domain, ",".join(f"{ip}:{p}" for ip, p in upstreams) or "none")
