"""`ketch proxy --mode userspace` against a real API server, without root: Services and
EndpointSlices made with kubectl, backends on loopback aliases, clients through the ports the
proxy publishes at /services. Also /healthz and /metrics as a user scrapes them."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from kvstore.local_cluster import free_port
from orchestrator.lab.local_plane import LocalControlPlane

BACKENDS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    base = tmp_path_factory.mktemp("proxy")
    plane = LocalControlPlane(base, kv_members=1)
    backend_port = free_port()
    servers = []
    try:
        plane.start()
        for address in BACKENDS:
            servers.append(subprocess.Popen([sys.executable, "-m", "tests.proxy_backend", address, str(backend_port)],
                                            stdin=subprocess.DEVNULL, start_new_session=True))
        metrics = free_port()
        plane.start_component("proxy", "proxy", "--kubeconfig", str(plane.pki_dir / "proxy.kubeconfig"),
                              "--node-name", "n1", "--mode", "userspace", "--metrics-bind", f"127.0.0.1:{metrics}",
                              "--min-sync-interval", "0.05")
        plane.metrics_url = f"http://127.0.0.1:{metrics}"
        plane.backend_port = backend_port
        yield plane
    finally:
        for server in servers:
            server.kill()
            server.wait()
        plane.stop()


def apply(plane, *objects) -> None:
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))


def service(name: str, protocol: str = "TCP", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"name": "p", "port": 80, "protocol": protocol}], **spec}}


def endpoint_slice(plane, name: str, ready: dict[str, bool], protocol: str = "TCP") -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "p", "port": plane.backend_port, "protocol": protocol}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ok}, "nodeName": "n1"}
                          for ip, ok in ready.items()]}


def get(plane, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(plane.metrics_url + path, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def wait(what, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not (value := what()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what.__doc__ or what}")
        time.sleep(0.1)
    return value


def published(plane, name: str) -> dict | None:
    status, body = get(plane, "/services")
    return json.loads(body).get(f"default/{name}/tcp/p") or json.loads(body).get(f"default/{name}/udp/p") \
        if status == 200 else None


def answers(port: int, count: int) -> list[str]:
    out = []
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            out.append(conn.recv(64).decode())
    return out


def spread(port: int, count: int) -> set[str]:
    """The backends that answered `count` connections; empty while connections are refused."""
    try:
        return set(answers(port, count))
    except OSError:
        return set()


def test_healthz_turns_ok_after_the_first_sync(plane):
    assert wait(lambda: get(plane, "/healthz")[0] == 200)
    body = json.loads(get(plane, "/healthz")[1])
    assert body["lastUpdated"] and body["nodeEligible"] is True


def test_tcp_service_spreads_over_ready_endpoints_and_follows_changes(plane):
    apply(plane, service("web", type="NodePort"), endpoint_slice(plane, "web", dict.fromkeys(BACKENDS, True)))
    entry = wait(lambda: (e := published(plane, "web")) and "nodePort" in e and e)
    assert wait(lambda: spread(entry["proxyPort"], 30) == set(BACKENDS))
    assert set(answers(entry["nodePort"], 30)) == set(BACKENDS)  # the NodePort too
    apply(plane, endpoint_slice(plane, "web", {BACKENDS[0]: True, BACKENDS[1]: False, BACKENDS[2]: True}))
    assert wait(lambda: spread(entry["proxyPort"], 20) == {BACKENDS[0], BACKENDS[2]})
    apply(plane, endpoint_slice(plane, "web", {}))  # no endpoints: refused at once, the port is kept

    def refused():
        try:
            answers(entry["proxyPort"], 1)
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:  # accepted just before the listener closed
            return False
        return False
    assert wait(refused)
    apply(plane, endpoint_slice(plane, "web", {BACKENDS[1]: True}))
    assert wait(lambda: spread(entry["proxyPort"], 3) == {BACKENDS[1]})
    assert published(plane, "web")["proxyPort"] == entry["proxyPort"]


def test_session_affinity_pins_a_client(plane):
    apply(plane, service("sticky", sessionAffinity="ClientIP"),
          endpoint_slice(plane, "sticky", dict.fromkeys(BACKENDS, True)))
    entry = wait(lambda: published(plane, "sticky"))
    assert wait(lambda: spread(entry["proxyPort"], 1))
    assert len(set(answers(entry["proxyPort"], 20))) == 1


def udp_ask(port: int, payload: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.5)
        client.sendto(payload, ("127.0.0.1", port))
        try:
            return client.recvfrom(2048)[0]
        except TimeoutError:
            return None  # dropped (e.g. before the endpoints arrived): a UDP client asks again


def test_udp_service_echoes_through_the_proxy(plane):
    apply(plane, service("echo", "UDP"), endpoint_slice(plane, "echo", {BACKENDS[0]: True}, "UDP"))
    entry = wait(lambda: published(plane, "echo"))
    assert wait(lambda: udp_ask(entry["proxyPort"], b"ping")) == f"{BACKENDS[0]} ping".encode()


def test_metrics_show_syncs_and_programming_latency(plane):
    status, text = get(plane, "/metrics")
    assert status == 200
    count = next(float(line.split()[-1]) for line in text.splitlines()
                 if line.startswith("kubeproxy_network_programming_duration_seconds_count"))
    assert count >= 1
    assert "kubeproxy_sync_proxy_rules_duration_seconds_bucket" in text
    assert 'kubeproxy_sync_proxy_rules_objects{kind="listeners"}' in text
