"""`ketch proxy` as a process (root, nftables mode) against a real API server: it follows
Services and EndpointSlices made with kubectl, reports health, repairs a crashed run's drift on
restart, and `--cleanup` removes its table. Its rules go into a lab host's namespace (--netns);
the process itself stays next to the API server on loopback."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from kvstore.local_cluster import free_port
from netproxy.nft import list_table
from netproxy.ruleset import TABLE
from orchestrator.lab.hosts import Lab
from orchestrator.lab.local_plane import LocalControlPlane

BACKENDS = ["10.77.0.101", "10.77.0.102", "10.77.0.103"]
PORT = 8080


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    base = tmp_path_factory.mktemp("proxy-component")
    plane = LocalControlPlane(base / "plane", kv_members=1)
    lab = Lab.create(1, base / "lab")
    try:
        plane.start()
        host = lab.hosts[0]
        for address in BACKENDS:
            lab.run_in(host, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            lab.start(host, f"backend-{address}", [sys.executable, "-m", "tests.proxy_backend", address, str(PORT)])
        yield plane, lab, host
    finally:
        lab.close()
        plane.stop()


def start_proxy(plane, host, metrics: int) -> subprocess.Popen:
    return plane.start_component("proxy", "proxy", "--kubeconfig", str(plane.pki_dir / "proxy.kubeconfig"),
                                 "--node-name", host.name, "--netns", host.netns, "--min-sync-interval", "0.05",
                                 "--metrics-bind", f"127.0.0.1:{metrics}")


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def wait(what, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (value := what()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what.__doc__ or what}")
        time.sleep(0.2)
    return value


def answers(lab, host, address: str, count: int) -> set[str]:
    out = lab.run_in(host, sys.executable, "-m", "tests.proxy_client", "tcp", address, "80", str(count), "1").stdout
    return set(json.loads(out))


def slice_of(addresses: list[str]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]}


def test_the_proxy_follows_the_api_survives_a_crash_and_cleans_up(setup):
    plane, lab, host = setup
    metrics = free_port()
    proxy = start_proxy(plane, host, metrics)
    assert wait(lambda: healthz(metrics) == 200)
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"ports": [{"name": "http", "port": 80}]}}, slice_of(BACKENDS)]))
    cluster_ip = json.loads(plane.kubectl("get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    assert wait(lambda: answers(lab, host, cluster_ip, 60) == set(BACKENDS))

    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(slice_of(BACKENDS[:1])))
    assert wait(lambda: answers(lab, host, cluster_ip, 10) == {BACKENDS[0]})
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=3) as response:
        text = response.read().decode()
    assert 'kubeproxy_sync_proxy_rules_total{kind="full"} 1.0' in text
    assert 'kubeproxy_sync_proxy_rules_objects{kind="elements"} 1.0' in text

    proxy.send_signal(signal.SIGKILL)
    proxy.wait()
    lab.run_in(host, "nft", "-f", "-", input=f"flush map ip {TABLE} service-ips\nadd chain ip {TABLE} junk\n")
    assert answers(lab, host, cluster_ip, 3) == {"timeout"}  # the drift breaks the service
    proxy = start_proxy(plane, host, metrics)
    assert wait(lambda: answers(lab, host, cluster_ip, 5) == {BACKENDS[0]})  # the first sync repaired it
    assert "junk" not in list_table(TABLE, host.netns)

    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait(timeout=10) == 0
    cleanup = subprocess.run([sys.executable, "-m", "orchestrator.cli", "proxy", "--cleanup", "--netns", host.netns],
                             capture_output=True, text=True, timeout=60)
    assert cleanup.returncode == 0 and "nftables" in cleanup.stdout
    assert list_table(TABLE, host.netns) is None
