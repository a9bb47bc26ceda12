"""What clients rely on beyond CRUD: paging, graceful deletion, finalizers, propagation, bookmarks,
Table watch events, JSON patch through kubectl, and pods/log without a kubelet."""

from __future__ import annotations

import json
import time

import pytest

from tests.api.rawhttp import Raw, status_of


@pytest.fixture(scope="module")
def raw(plane):
    return Raw(plane)


def create(raw, path: str, obj: dict) -> dict:
    code, _, data = raw.request("POST", path, json.dumps(obj))
    assert code == 201, data
    return json.loads(data)


CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def test_limit_and_continue_page_through_one_consistent_snapshot(raw):
    for i in range(7):
        create(raw, CONFIGMAPS, {"metadata": {"name": f"page-{i}", "labels": {"paged": "yes"}}})
    names, token, versions = [], None, set()
    while True:
        query = "?labelSelector=paged%3Dyes&limit=3" + (f"&continue={token}" if token else "")
        code, _, data = raw.request("GET", CONFIGMAPS + query)
        page = json.loads(data)
        names += [item["metadata"]["name"] for item in page["items"]]
        versions.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue")
        if not token:
            break
        create(raw, CONFIGMAPS, {"metadata": {"name": f"page-late-{len(names)}", "labels": {"paged": "yes"}}})
    assert names == [f"page-{i}" for i in range(7)]  # the later writes are not in this snapshot
    assert len(versions) == 1
    code, _, data = raw.request("GET", CONFIGMAPS + "?limit=2&continue=garbage")
    assert code == 400 and "continue" in status_of(data)["message"]


def test_a_bound_pod_is_deleted_gracefully_and_an_unbound_one_at_once(raw):
    create(raw, PODS, {"metadata": {"name": "graceful"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    binding = {"metadata": {"name": "graceful"}, "target": {"kind": "Node", "name": "node-x"}}
    assert raw.request("POST", PODS + "/graceful/binding", json.dumps(binding))[0] == 201
    code, _, data = raw.request("DELETE", PODS + "/graceful", json.dumps({"propagationPolicy": "Background"}))
    marked = json.loads(data)
    assert code == 200 and marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30  # the pod's terminationGracePeriodSeconds
    assert raw.request("GET", PODS + "/graceful")[0] == 200  # waiting for its kubelet
    assert raw.request("DELETE", PODS + "/graceful", json.dumps({"gracePeriodSeconds": 0}))[0] == 200
    assert raw.request("GET", PODS + "/graceful")[0] == 404
    create(raw, PODS, {"metadata": {"name": "unbound"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert raw.request("DELETE", PODS + "/unbound")[0] == 200
    assert raw.request("GET", PODS + "/unbound")[0] == 404


def test_finalizers_hold_an_object_until_the_last_is_removed(raw):
    create(raw, CONFIGMAPS, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    code, _, data = raw.request("DELETE", CONFIGMAPS + "/held")
    assert code == 200 and json.loads(data)["metadata"]["deletionTimestamp"]
    code, _, data = raw.request("PATCH", CONFIGMAPS + "/held", json.dumps({"metadata": {"finalizers": ["new"]}}),
                                "application/merge-patch+json")
    assert code == 422 and "no new finalizers" in status_of(data)["message"]
    code, _, _ = raw.request("PATCH", CONFIGMAPS + "/held", json.dumps({"metadata": {"finalizers": None}}),
                             "application/merge-patch+json")
    assert code == 200
    assert raw.request("GET", CONFIGMAPS + "/held")[0] == 404


@pytest.mark.parametrize("policy,finalizer", [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")])
def test_foreground_and_orphan_deletion_leave_their_finalizer_for_the_garbage_collector(raw, policy, finalizer):
    name = f"owner-{policy.lower()}"
    create(raw, CONFIGMAPS, {"metadata": {"name": name}})
    code, _, data = raw.request("DELETE", f"{CONFIGMAPS}/{name}", json.dumps({"propagationPolicy": policy}))
    meta = json.loads(data)["metadata"]
    assert code == 200 and meta["finalizers"] == [finalizer] and meta["deletionTimestamp"]


def test_quiet_watches_get_bookmarks_only_when_they_allow_them(plane):
    raw = Raw(plane, plane.add_api_server("--watch-bookmark-seconds", "0.3"))
    watch = "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1&labelSelector=none%3Dnone"
    code, _, data = raw.request("GET", watch + "&allowWatchBookmarks=true")
    events = [json.loads(line) for line in data.splitlines()]
    assert code == 200 and events and {e["type"] for e in events} == {"BOOKMARK"}
    assert events[0]["object"]["kind"] == "Pod" and int(events[0]["object"]["metadata"]["resourceVersion"]) > 0
    code, _, data = raw.request("GET", watch)
    assert code == 200 and data == b""  # no events, no bookmarks: the stream ends at the timeout


def test_watch_events_are_table_rows_when_kubectl_asks_for_tables(raw):
    create(raw, PODS, {"metadata": {"name": "tabled", "labels": {"t": "1"}},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    code, headers, data = raw.request("GET", PODS + "?watch=true&timeoutSeconds=1&labelSelector=t%3D1",
                                      accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    event = json.loads(data.splitlines()[0])
    assert headers["content-type"].startswith("application/json;as=Table")
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][:3] == ["tabled", "0/1", "Pending"]


def test_kubectl_json_patch(plane):
    plane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                                        "metadata": {"name": "patched"}, "data": {"a": "1"}}))
    plane.kubectl("patch", "configmap", "patched", "--type=json", "-p",
                  json.dumps([{"op": "add", "path": "/data/b", "value": "2"}, {"op": "remove", "path": "/data/a"}]))
    assert json.loads(plane.kubectl("get", "cm", "patched", "-o", "json").stdout)["data"] == {"b": "2"}


def test_pod_logs_say_clearly_that_no_kubelet_answers(plane, raw):
    create(raw, "/api/v1/nodes", {"metadata": {"name": "silent-node"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 9}}}})
    create(raw, PODS, {"metadata": {"name": "logless"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    unbound = plane.kubectl("logs", "logless", check=False)
    assert 'pod "logless" does not have a host assigned' in unbound.stderr
    raw.request("POST", PODS + "/logless/binding", json.dumps({"metadata": {"name": "logless"},
                                                               "target": {"kind": "Node", "name": "silent-node"}}))
    started = time.monotonic()
    logs = plane.kubectl("logs", "logless", check=False)
    assert logs.returncode == 1 and logs.stdout == ""
    assert 'the kubelet of node "silent-node" at 127.0.0.1:9 does not answer' in logs.stderr
    assert time.monotonic() - started < 20


def test_a_kept_alive_connection_is_not_closed_after_a_thousand_requests(plane):
    """As Kubernetes' API server, Ketch's keeps a client's connection however many requests it
    carries (Hypercorn's default closed it after 1,000: a component paid a TLS handshake for each
    thousand, and a client that did not expect it failed)."""
    import trio

    from orchestrator.client import kubeconfig
    from orchestrator.client.transport import Connection

    access = kubeconfig.load(plane.kubeconfig())
    host, port = access.server.removeprefix("https://").rsplit(":", 1)
    headers = [("Authorization", f"Bearer {access.token}"), ("Accept", "application/json")]

    async def many() -> list[tuple[int, str]]:
        connection = Connection(host, int(port), access.ssl_context())
        await connection.open()
        answers = []
        for _ in range(1100):
            code, response_headers, _ = await connection.request("GET", "/version", headers)
            answers.append((code, response_headers.get("connection", "")))
        await connection.aclose()
        return answers

    answers = trio.run(many)
    assert all(code == 200 for code, _ in answers)
    assert all("close" not in connection for _, connection in answers)
