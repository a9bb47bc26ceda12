"""The lab cloud controller: LoadBalancer addresses from the pool, announcers, node labels, removed hosts."""

from orchestrator.cloud.plan import ANNOUNCER, REGION, ZONE, LabHost, announcer_for, plan

HOSTS = [LabHost("cp-1", "10.77.0.1", "zone-a", False), LabHost("worker-1", "10.77.0.101", "zone-a", True),
         LabHost("worker-2", "10.77.0.102", "zone-b", True)]


def node(name: str, ready=True, labels=None, address=None) -> dict:
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if address:
        status["addresses"] = [{"type": "InternalIP", "address": address}]
    return {"metadata": {"name": name, "labels": labels or {}}, "status": status}


def service(name: str, kind="LoadBalancer", ip=None, announcer=None) -> dict:
    meta = {"name": name, "namespace": "default", "annotations": {ANNOUNCER: announcer} if announcer else {}}
    status = {"loadBalancer": {"ingress": [{"ip": ip}]}} if ip else {}
    return {"metadata": meta, "spec": {"type": kind}, "status": status}


NODES = [node("cp-1", address="10.77.0.1"), node("worker-1", address="10.77.0.101"),
         node("worker-2", address="10.77.0.102")]


def test_load_balancers_get_the_lowest_free_addresses_and_an_announcing_worker():
    result = plan([service("a"), service("b", ip="10.77.0.201"), service("c", kind="ClusterIP")], NODES, HOSTS,
                  "10.77.0.200/29", "lab")
    assert result.service_status == [("default", "a", {"loadBalancer": {"ingress": [{"ip": "10.77.0.202",
                                                                                     "ipMode": "VIP"}]}})]
    announcers = dict(((ns, n), a[ANNOUNCER]) for ns, n, a in result.service_annotations)
    assert set(announcers.values()) <= {"worker-1", "worker-2"} and len(announcers) == 2


def test_an_announcer_that_stops_being_ready_is_replaced_and_others_keep_theirs():
    key = "default/a"
    first = announcer_for(key, ["worker-1", "worker-2"])
    other = "worker-2" if first == "worker-1" else "worker-1"
    nodes = [node(first, ready=False, address="x"), node(other, address="y")]
    result = plan([service("a", ip="10.77.0.201", announcer=first)], nodes, HOSTS, "10.77.0.200/29", "lab")
    assert result.service_annotations == [("default", "a", {ANNOUNCER: other})]


def test_an_exhausted_pool_is_an_event_not_a_crash():
    services = [service(f"s{i}") for i in range(8)]
    result = plan(services, NODES, HOSTS, "10.77.0.200/30", "lab")  # 2 usable addresses
    assert len(result.service_status) == 2
    assert sum(1 for e in result.events if e[3] == "SyncLoadBalancerFailed") == 6


def test_a_service_no_longer_a_load_balancer_gives_its_address_back():
    result = plan([service("a", kind="ClusterIP", ip="10.77.0.201", announcer="worker-1")], NODES, HOSTS,
                  "10.77.0.200/29", "lab")
    assert result.service_status == [("default", "a", {"loadBalancer": {}})]
    assert result.service_annotations == [("default", "a", {ANNOUNCER: None})]


def test_node_zones_and_region_come_from_the_host_list_and_removed_hosts_lose_their_node():
    nodes = NODES + [node("worker-9"), node("hollow-0", labels={"type": "hollow"})]
    result = plan([], nodes, HOSTS, "", "lab")
    labels = dict(result.node_patches)
    assert labels["worker-2"] == {"metadata": {"labels": {REGION: "lab", ZONE: "zone-b"}}}
    assert result.delete_nodes == ["worker-9"]
