"""The convergence check of cluster chaos runs: each kind of problem is named, a healthy cluster has none."""

from orchestrator.lab.convergence import Acked, problems


def deployment(name, replicas=2, uid=None):
    return {"metadata": {"name": name, "namespace": "chaos", "uid": uid or f"d-{name}"}, "spec": {"replicas": replicas}}


def rs(name, owner, replicas=2, uid=None):
    return {
        "metadata": {
            "name": name,
            "namespace": "chaos",
            "uid": uid or f"rs-{name}",
            "ownerReferences": [{"kind": "Deployment", "name": owner, "uid": f"d-{owner}", "controller": True}],
        },
        "spec": {"replicas": replicas},
    }


def pod(name, owner_rs, ip, ready=True, app="web"):
    return {
        "metadata": {
            "name": name,
            "namespace": "chaos",
            "labels": {"app": app},
            "ownerReferences": [{"kind": "ReplicaSet", "name": owner_rs, "uid": f"rs-{owner_rs}", "controller": True}],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(name="web"):
    return {"metadata": {"name": name, "namespace": "chaos"}, "spec": {"selector": {"app": "web"}}}


def endpoint_slice(ips, service_name="web"):
    return {
        "metadata": {"namespace": "chaos", "labels": {"kubernetes.io/service-name": service_name}},
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
    }


HEALTHY = dict(
    deployments=[deployment("web")],
    replicasets=[rs("web-1", "web")],
    pods=[pod("a", "web-1", "10.244.1.2"), pod("b", "web-1", "10.244.2.2")],
    services=[service()],
    slices=[endpoint_slice(["10.244.1.2", "10.244.2.2"])],
)


def test_a_healthy_cluster_has_no_problems():
    assert problems(**HEALTHY, acked=Acked({"chaos/web"}, {"chaos/web"})) == []


def test_missing_acknowledged_objects_and_undeleted_ones_are_named():
    found = problems(**HEALTHY, acked=Acked({"chaos/web", "chaos/lost"}, {"chaos/gone"}, {"deployment:chaos/web"}))
    assert "deployment chaos/lost was created (acknowledged) but is missing" in found
    assert "service chaos/gone was created (acknowledged) but is missing" in found
    assert "deployment chaos/web was deleted (acknowledged) but is still there" in found


def test_duplicates_orphans_and_unready_replicas():
    state = {**HEALTHY, "pods": HEALTHY["pods"] + [pod("c", "web-1", "10.244.3.2"), pod("o", "ghost", "10.244.1.9")]}
    found = problems(**state, acked=Acked())
    assert "replicaset chaos/web-1 has 3 active pods for 2 replicas" in found
    assert "pod chaos/o is an orphan: its ReplicaSet ghost is gone" in found
    assert any(p.startswith("deployment chaos/web has 3 ready Running pods") for p in found)


def test_endpoints_must_equal_the_ready_pods():
    state = {**HEALTHY, "pods": [pod("a", "web-1", "10.244.1.2"), pod("b", "web-1", "10.244.2.2", ready=False)]}
    found = problems(**state, acked=Acked())
    assert any(p.startswith("service chaos/web has ready endpoints ['10.244.1.2', '10.244.2.2']") for p in found)
