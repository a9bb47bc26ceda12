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


SHOP_ROBOT = User("system:serviceaccount:shop:robot", "sa-uid",
                  ("system:serviceaccounts", "system:serviceaccounts:shop"))
POSING = User("system:serviceaccount:shop:robot", "x", ())  # the name alone gives no role


@pytest.mark.parametrize("verb, resource, namespace, name, subresource, expected", [
    ("list", "pods", "shop", None, None, True),
    ("watch", "deployments", "shop", None, None, True),
    ("get", "pods", "shop", "web-1", "log", True),
    ("get", "configmaps", "shop", "kube-root-ca.crt", None, True),
    ("get", "namespaces", None, "shop", None, True),          # its own Namespace object
    ("get", "secrets", "shop", "db", None, False),            # `view` leaves Secrets out
    ("list", "secrets", "shop", None, None, False),
    ("list", "pods", "default", None, None, False),           # another namespace
    ("list", "pods", None, None, None, False),                # all namespaces
    ("get", "nodes", None, "n1", None, False),                # cluster-scoped
    ("list", "namespaces", None, None, None, False),
    ("get", "namespaces", None, "default", None, False),
    ("create", "pods", "shop", None, None, False),
    ("delete", "pods", "shop", "web-1", None, False),
    ("create", "pods", "shop", "web-1", "exec", False),
    ("create", "serviceaccounts", "shop", "robot", "token", False),
    ("create", "selfsubjectaccessreviews", None, None, None, True),
])
def test_a_service_account_views_its_own_namespace(verb, resource, namespace, name, subresource, expected):
    assert can(SHOP_ROBOT, verb, resource, namespace, name, subresource) is expected
    assert SHOP_ROBOT.roles == {"serviceaccount:shop"} and SHOP_ROBOT.node is None
    assert not can(POSING, "list", "pods", "shop")


def test_a_kubelet_may_ask_for_tokens_but_only_for_its_pods():
    from orchestrator.apiserver.auth import node_token_refusal
    assert can(NODE, "create", "serviceaccounts", "shop", "robot", "token")
    assert not can(NODE, "get", "serviceaccounts", "shop", "robot", "token")
    assert not can(VIEWER, "create", "serviceaccounts", "shop", "robot", "token")
    assert NODE.node == "n1" and ADMIN.node is None
    mine = {"metadata": {"uid": "p1"}, "spec": {"nodeName": "n1"}}
    theirs = {"metadata": {"uid": "p1"}, "spec": {"nodeName": "n2"}}
    assert node_token_refusal("n1", "Pod", "web", "p1", mine) is None
    assert node_token_refusal("n1", "Pod", "web", "p1", None) is None  # not found: the request answers 404
    assert node_token_refusal("n1", "", "", "", mine) == "node requested token not bound to a pod"
    assert node_token_refusal("n1", "Secret", "s", "u", mine) == "node requested token not bound to a pod"
    assert node_token_refusal("n1", "Pod", "web", "", mine) == "node requested token with a pod binding without a uid"
    assert node_token_refusal("n1", "Pod", "web", "p1", theirs) == \
        "node requested token bound to a pod scheduled on a different node"
    assert "does not match the UID in record" in node_token_refusal("n1", "Pod", "web", "old", mine)
