import pytest

from orchestrator.api.services import LB_ANNOUNCER, announced_by


def service(kind="LoadBalancer", announcer="worker-1", ingress=({"ip": "10.77.0.201"},)):
    return {"metadata": {"name": "web", "namespace": "default", "annotations": {LB_ANNOUNCER: announcer}},
            "spec": {"type": kind}, "status": {"loadBalancer": {"ingress": list(ingress)}}}


@pytest.mark.parametrize("obj, node, expected", [
    (service(), "worker-1", ("10.77.0.201",)),
    (service(), "worker-2", ()),  # another worker announces it
    (service(kind="ClusterIP"), "worker-1", ()),  # no longer a LoadBalancer: let go of its address
    (service(ingress=()), "worker-1", ()),  # no address handed out yet
    (service(ingress=({"hostname": "lb.example"}, {"ip": "10.77.0.202"})), "worker-1", ("10.77.0.202",)),
])
def test_a_node_announces_only_the_addresses_of_services_it_was_named_for(obj, node, expected):
    assert announced_by(obj, node) == expected
