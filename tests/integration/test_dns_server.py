"""`ketch dns`'s server half on loopback without a control plane: the response cache follows the
view, an upstream that never answers costs SERVFAIL (not a hang), too many forwards in flight are
refused at once, TCP carries several queries per connection, and bad flags exit with a reason."""

from __future__ import annotations

import socket
import subprocess
import sys

import dns.message
import dns.query
import dns.rcode
import trio
import yaml

from netproxy.dns.cli import bind_sockets, choose_upstreams, nameservers, parse_address
from netproxy.dns.server import DNSServer
from netproxy.dns.view import build_view

WEB = {"metadata": {"name": "web", "namespace": "default"},
       "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}


def query(name: str, rtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rtype)


async def udp_exchange(port: int, message: dns.message.Message, timeout_s: float = 5.0) -> dns.message.Message:
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.connect(("127.0.0.1", port))
        await sock.send(message.to_wire())
        with trio.fail_after(timeout_s):
            return dns.message.from_wire(await sock.recv(65535))


async def start_udp(nursery, server: DNSServer) -> int:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    await nursery.start(server.serve_udp, sock)
    return sock.getsockname()[1]


async def test_answers_follow_the_view_through_the_cache():
    server = DNSServer()
    async with trio.open_nursery() as nursery:
        port = await start_udp(nursery, server)
        assert (await udp_exchange(port, query("web.default.svc.cluster.local"))).rcode() == dns.rcode.NXDOMAIN
        server.set_view(build_view([WEB], [], generation=1))
        again = await udp_exchange(port, query("web.default.svc.cluster.local"))
        assert [r.to_text() for rrset in again.answer for r in rrset] == ["10.96.0.20"]
        for _ in range(3):
            await udp_exchange(port, query("web.default.svc.cluster.local"))
        nursery.cancel_scope.cancel()
    assert server.registry.get_sample_value("ketch_dns_cache_hits_total") == 3


async def test_a_silent_upstream_costs_servfail_within_the_timeout():
    silent = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    await silent.bind(("127.0.0.1", 0))
    server = DNSServer(upstreams=[silent.getsockname()], forward_timeout_s=0.3)
    async with trio.open_nursery() as nursery:
        port = await start_udp(nursery, server)
        response = await udp_exchange(port, query("example.org"), timeout_s=3)
        assert response.rcode() == dns.rcode.SERVFAIL
        assert (await udp_exchange(port, query("web.default.svc.cluster.local"))).rcode() == dns.rcode.NXDOMAIN
        nursery.cancel_scope.cancel()
    silent.close()


async def test_forwards_beyond_the_limit_are_refused_at_once():
    silent = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await silent.bind(("127.0.0.1", 0))
    server = DNSServer(upstreams=[silent.getsockname()], forward_timeout_s=5.0, max_forwards=1)
    async with trio.open_nursery() as nursery:
        port = await start_udp(nursery, server)
        first = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await first.connect(("127.0.0.1", port))
        await first.send(query("one.example.org").to_wire())  # takes the only slot for 5 s
        await trio.sleep(0.1)
        second = await udp_exchange(port, query("two.example.org"), timeout_s=1)
        assert second.rcode() == dns.rcode.SERVFAIL
        first.close()
        nursery.cancel_scope.cancel()
    silent.close()


async def test_tcp_carries_several_queries_and_forwards_over_tcp():
    upstream = DNSServer()
    upstream.set_view(build_view([WEB], [], domain="upstream.test"))
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    upstream_port = listeners[0].socket.getsockname()[1]
    server = DNSServer(upstreams=[("127.0.0.1", upstream_port)])
    server.set_view(build_view([WEB], []))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, upstream.serve_tcp_connection, listeners)
        front = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = front[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, server.serve_tcp_connection, front)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        answers = []
        names = ("web.default.svc.cluster.local", "web.default.svc.upstream.test", "nope.default.svc.cluster.local")
        for name in names:
            wire = query(name).to_wire()
            await stream.send_all(len(wire).to_bytes(2, "big") + wire)
            size = int.from_bytes(await stream.receive_some(2), "big")
            data = b""
            while len(data) < size:
                data += await stream.receive_some(size - len(data))
            answers.append(dns.message.from_wire(data))
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert [a.rcode() for a in answers] == [dns.rcode.NOERROR, dns.rcode.NOERROR, dns.rcode.NXDOMAIN]
    assert [r.to_text() for rrset in answers[1].answer for r in rrset] == ["10.96.0.20"]


def test_address_and_upstream_parsing():
    assert parse_address("10.96.0.10", 53) == ("10.96.0.10", 53)
    assert parse_address("127.0.0.1:5353", 53) == ("127.0.0.1", 5353)
    assert parse_address("[fd00::10]:53", 9) == ("fd00::10", 53)
    assert parse_address("fd00::10", 53) == ("fd00::10", 53)
    for bad in ("kube-dns:53", "1.2.3.4:99999", "1.2.3.4:x", "[fd00::1]x", ""):
        try:
            parse_address(bad, 53)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
    assert nameservers("# comment\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch x\nnameserver bad\n"
                       "nameserver 1.1.1.1\n") == ["10.0.0.2", "1.1.1.1"]


def test_upstreams_never_include_ourselves(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\nnameserver 10.0.0.2\n")
    assert choose_upstreams(None, str(resolv), ("0.0.0.0", 53)) == [("10.0.0.2", 53)]
    assert choose_upstreams(None, str(resolv), ("0.0.0.0", 5353)) == [("127.0.0.1", 53), ("10.0.0.2", 53)]
    assert choose_upstreams(["none"], str(resolv), ("0.0.0.0", 53)) == []
    assert choose_upstreams(["10.0.0.9:5300"], str(resolv), ("0.0.0.0", 53)) == [("10.0.0.9", 5300)]
    assert choose_upstreams(None, str(tmp_path / "missing"), ("0.0.0.0", 53)) == []


def ketch_dns(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "dns", "--kubeconfig", "/nonexistent", *args],
                          capture_output=True, text=True, timeout=30)


def test_bad_flags_and_a_busy_port_exit_with_one_line():
    bad = ketch_dns("--bind", "dns.local:53")
    assert bad.returncode == 2 and bad.stderr.startswith("ketch dns: ") and "IP address" in bad.stderr
    assert ketch_dns("--ttl", "-1", "--bind", "127.0.0.1:0").returncode == 2
    udp, tcp = bind_sockets("127.0.0.1", 0)
    try:
        busy = ketch_dns("--bind", f"127.0.0.1:{udp.getsockname()[1]}", "--upstream", "none")
        assert busy.returncode == 1 and "cannot listen" in busy.stderr
    finally:
        udp.close()
        tcp.close()
    no_config = ketch_dns("--bind", "127.0.0.1:0", "--upstream", "none", "--metrics-bind", "")
    assert no_config.returncode == 2 and "kubeconfig" in no_config.stderr


def test_a_busy_metrics_port_exits_with_one_line(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = subprocess.run([sys.executable, "-m", "orchestrator.cli", "dns", "--kubeconfig", str(kubeconfig),
                                 "--bind", "127.0.0.1:0", "--upstream", "none",
                                 "--metrics-bind", f"127.0.0.1:{busy.getsockname()[1]}"],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "ketch dns: cannot serve metrics on" in result.stderr, result.stderr
