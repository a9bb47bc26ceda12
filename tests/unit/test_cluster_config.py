"""The cluster file: parsing with clear errors, rendering back, and what runs on each host."""

from pathlib import Path

import pytest

from orchestrator.lab import config as cluster_config
from orchestrator.lab.components import Paths, api_endpoint, components

GOOD = """
[cluster]
name = "lab"
dir = "/srv/ketch"
lb_pool = "192.168.50.240/29"

[[host]]
name = "cp-1"
address = "192.168.50.10"
roles = ["control-plane"]

[[host]]
name = "worker-1"
address = "192.168.50.21"
roles = ["worker"]
zone = "rack-a"
"""


def test_a_good_file_parses_renders_and_parses_back_the_same():
    config = cluster_config.parse(GOOD)
    assert [h.name for h in config.control_planes] == ["cp-1"] and config.workers[0].zone == "rack-a"
    assert config.cluster_dns == "10.96.0.10" and config.api_service_ip == "10.96.0.1"
    assert cluster_config.parse(cluster_config.render(config)) == config


@pytest.mark.parametrize("change, message", [
    (('zone = "rack-a"', 'zone = "rack-a"\ncolour = "blue"'), r"unknown field\(s\) colour"),
    (('roles = ["worker"]', 'roles = ["kitchen"]'), "roles must be a non-empty list"),
    (('address = "192.168.50.21"', 'address = "192.168.50.10"'), "appears twice"),
    (('address = "192.168.50.21"', 'address = "10.96.0.5"'), "inside a cluster network"),
    (('name = "worker-1"', 'name = "Worker_1"'), "lowercase letters"),
    (('roles = ["control-plane"]', 'roles = ["worker"]'), "no host has the control-plane role"),
    (('lb_pool = "192.168.50.240/29"', 'lb_pool = "nonsense"'), "not a network"),
    (("[cluster]", "[cluster"), "not valid TOML"),
])
def test_mistakes_are_named(change, message):
    with pytest.raises(cluster_config.ConfigError, match=message):
        cluster_config.parse(GOOD.replace(*change))


def test_an_even_number_of_control_planes_is_refused():
    with pytest.raises(cluster_config.ConfigError, match="must be 1, 3, 5 or 7"):
        cluster_config.lab(2, 1, Path("/tmp/x"), netns=True)
    two = GOOD.replace('name = "worker-1"', 'name = "cp-2"').replace('roles = ["worker"]', 'roles = ["control-plane"]')
    with pytest.raises(cluster_config.ConfigError, match="odd number"):
        cluster_config.parse(two)


def test_lab_configs_for_namespaces_and_loopback():
    netns = cluster_config.lab(3, 2, Path("/tmp/lab"), netns=True)
    assert [h.address for h in netns.hosts] == ["10.77.0.1", "10.77.0.2", "10.77.0.3", "10.77.0.101", "10.77.0.102"]
    assert netns.proxy_mode == "nftables" and netns.isolation == "host"
    loop = cluster_config.lab(1, 2, Path("/tmp/lab"), netns=False)
    assert loop.hosts[0].address == "127.0.1.1" and loop.proxy_mode == "userspace" and loop.isolation == "loopback"


def test_what_runs_where():
    config = cluster_config.parse(GOOD)
    ketch = ["ketch"]
    cp = [c.name for c in components(config, config.host("cp-1"), ketch, Path("/srv/cluster.toml"))]
    assert cp == ["kv", "apiserver", "scheduler", "controller-manager", "dns", "cloud-controller-manager"]
    worker = components(config, config.host("worker-1"), ketch)
    assert [c.name for c in worker] == ["api-access", "kubelet", "proxy"]
    kubelet = next(c for c in worker if c.name == "kubelet").argv
    assert kubelet[kubelet.index("--node-ip") + 1] == "192.168.50.21"
    assert kubelet[kubelet.index("--cluster-dns") + 1] == "10.96.0.10"
    assert "topology.kubernetes.io/zone=rack-a" in kubelet
    assert api_endpoint(config, config.host("worker-1")) == "https://127.0.0.1:6443"
    assert api_endpoint(config, config.host("cp-1")) == "https://192.168.50.10:6443"
    assert Paths(config.directory).kubeconfig("proxy", "worker-1").name == "proxy@worker-1.kubeconfig"


def test_on_a_shared_loopback_workers_use_the_labs_one_access_proxy():
    config = cluster_config.lab(1, 2, Path("/tmp/lab"), netns=False)
    assert [c.name for c in components(config, config.workers[0], ["ketch"])] == ["kubelet", "proxy"]
