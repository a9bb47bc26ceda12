"""Tokens and RBAC-lite: what each role may do, and the token file's format."""

import pytest

from orchestrator.apiserver.auth import (
    Request,
    TokenFileError,
    User,
    allowed,
    authenticate,
    load_tokens,
    needs_pod_node,
)

ADMIN = User("admin", "1", ("system:masters",))
VIEWER = User("viewer", "2", ("ketch:viewers",))
SCHEDULER = User("system:kube-scheduler", "3", ("ketch:schedulers",))
NODE = User("system:node:n1", "4", ("system:nodes",))
NOBODY = User("nobody", "5", ())
CONTROLLERS = User("system:kube-controller-manager", "6", ("ketch:controllers",))


def can(user, verb, resource, namespace="default", name=None, subresource=None, pod_node=None):
    return allowed(user, Request(verb, resource, subresource, namespace, name), pod_node)


def test_a_viewer_reads_everything_but_secrets():
    assert allowed(VIEWER, Request("list", "configmaps", None, "default", None))
    assert not allowed(VIEWER, Request("get", "secrets", None, "default", "pw"))
    assert not allowed(VIEWER, Request("list", "secrets", None, None, None))


def test_admin_and_viewer():
    assert can(ADMIN, "delete", "nodes", None, "n1")
    assert can(VIEWER, "list", "pods") and not can(VIEWER, "create", "pods")
    assert not can(NOBODY, "get", "pods")
    assert can(NOBODY, "create", "selfsubjectaccessreviews", None)  # everyone may ask what they may do


def test_the_scheduler_binds_but_does_not_create_pods():
    assert can(SCHEDULER, "create", "pods", name="p", subresource="binding")
    assert can(SCHEDULER, "create", "bindings")
    assert not can(SCHEDULER, "create", "pods") and not can(SCHEDULER, "delete", "deployments", name="d")


def test_controllers_delete_nodes_whose_host_is_gone_but_never_create_one():
    assert can(CONTROLLERS, "delete", "nodes", None, "worker-2")  # the lab cloud controller's "instance gone"
    assert not can(CONTROLLERS, "create", "nodes", None)


def test_a_node_writes_only_its_own_node_lease_and_bound_pods():
    assert can(NODE, "update", "nodes", None, "n1", "status") and not can(NODE, "update", "nodes", None, "n2")
    assert can(NODE, "update", "leases", "kube-node-lease", "n1")
    assert not can(NODE, "update", "leases", "kube-node-lease", "n2")
    assert can(NODE, "update", "pods", name="p", subresource="status", pod_node="n1")
    assert not can(NODE, "update", "pods", name="p", subresource="status", pod_node="n2")
    assert can(NODE, "delete", "pods", name="p", pod_node="n1") and not can(NODE, "create", "pods")
    assert can(NODE, "watch", "pods") and not can(NODE, "list", "deployments")
    assert needs_pod_node(NODE, Request("update", "pods", "status", "default", "p"))
    assert not needs_pod_node(ADMIN, Request("update", "pods", "status", "default", "p"))


def test_tokens_are_read_from_kubernetes_static_token_files(tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text('t1,alice,u1,"system:masters,extra"\nt2,bob,u2\n')
    tokens = load_tokens(path)
    assert tokens["t1"] == User("alice", "u1", ("system:masters", "extra")) and tokens["t2"].groups == ()
    assert authenticate(tokens, "Bearer t1").name == "alice"
    assert authenticate(tokens, "Bearer t3") is None and authenticate(tokens, None) is None
    assert authenticate(tokens, "Basic dDE=") is None


@pytest.mark.parametrize("text", ["", "only-token\n", "t,,u\n"])
def test_bad_token_files_are_refused(tmp_path, text):
    path = tmp_path / "tokens.csv"
    path.write_text(text)
    with pytest.raises(TokenFileError):
        load_tokens(path)
