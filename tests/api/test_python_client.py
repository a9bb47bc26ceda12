"""The official Python client (kubernetes 37.0.2) against Ketch, and what two API servers share."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api(plane):
    return config.new_client_from_config(config_file=str(plane.kubeconfig()))


def pod(name: str, **labels) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_create_list_with_selectors_patch_replace_and_delete(api):
    core = client.CoreV1Api(api)
    created = core.create_namespaced_pod("default", {"metadata": {"generateName": "py-"},
                                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert created.metadata.name.startswith("py-") and len(created.metadata.name) == 8
    assert created.metadata.uid and created.metadata.resource_version and created.kind == "Pod"
    assert created.spec.restart_policy == "Always" and created.status.phase == "Pending"
    core.create_namespaced_pod("default", pod("sel-a", app="sel", tier="web"))
    core.create_namespaced_pod("default", pod("sel-b", app="sel", tier="db"))
    names = lambda result: sorted(p.metadata.name for p in result.items)  # noqa: E731
    assert names(core.list_namespaced_pod("default", label_selector="app=sel,tier!=db")) == ["sel-a"]
    assert names(core.list_namespaced_pod("default", label_selector="tier in (web,db)")) == ["sel-a", "sel-b"]
    assert names(core.list_namespaced_pod("default", label_selector="app=sel",
                                          field_selector="metadata.name=sel-b")) == ["sel-b"]
    assert names(core.list_namespaced_pod("default", label_selector="!tier,app=sel")) == []
    patched = core.patch_namespaced_pod("sel-a", "default", {"metadata": {"labels": {"patched": "yes"}}})
    assert patched.metadata.labels == {"app": "sel", "tier": "web", "patched": "yes"}
    stale = core.read_namespaced_pod("sel-b", "default")
    core.patch_namespaced_pod("sel-b", "default", {"metadata": {"annotations": {"a": "1"}}})
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_pod("sel-b", "default", stale)
    assert conflict.value.status == 409 and json.loads(conflict.value.body)["reason"] == "Conflict"
    core.delete_namespaced_pod("sel-b", "default")
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("sel-b", "default")
    assert missing.value.status == 404


def test_binding_sets_the_node_and_refuses_a_second_bind(api):
    core = client.CoreV1Api(api)
    created = core.create_namespaced_pod("default", pod("bound"))
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound", "uid": created.metadata.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    answer = core.create_namespaced_pod_binding("bound", "default", body, _preload_content=False)
    assert answer.status == 201
    got = core.read_namespaced_pod("bound", "default")
    assert got.spec.node_name == "node-1"
    assert [(c.type, c.status) for c in got.status.conditions] == [("PodScheduled", "True")]
    with pytest.raises(ApiException) as again:
        core.create_namespaced_binding("default", {**body, "target": {"kind": "Node", "name": "node-2"}},
                                       _preload_content=False)
    assert again.value.status == 409 and "already assigned" in json.loads(again.value.body)["message"]


def test_watch_resumes_from_a_resource_version_and_old_ones_are_410(api, plane):
    core = client.CoreV1Api(api)
    start = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod("watched-1", w="1"))
    core.patch_namespaced_pod("watched-1", "default", {"metadata": {"labels": {"step": "2"}}})
    core.delete_namespaced_pod("watched-1", "default")
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_pod, "default", label_selector="w=1",
                                      resource_version=start, timeout_seconds=2):
        seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", "watched-1"), ("MODIFIED", "watched-1"), ("DELETED", "watched-1")]
    # A server keeps the events since its watch cache started; older ones are gone (410 Expired),
    # as Kubernetes' cacher says once etcd has compacted them. A server started now has none of them.
    late = client.CoreV1Api(config.new_client_from_config(str(plane.kubeconfig(server=plane.add_api_server()))))
    with pytest.raises(ApiException) as expired:
        for _ in watch.Watch().stream(late.list_namespaced_pod, "default", resource_version=start, timeout_seconds=2):
            pass
    assert expired.value.status == 410 and "too old resource version" in expired.value.reason + str(expired.value.body)


def test_a_watch_behind_a_burst_sees_every_event_once_in_order(api):
    """Events that pile up behind a watch go out together (several lines per write): the official
    client still reads each, in resourceVersion order, none lost or doubled."""
    from concurrent.futures import ThreadPoolExecutor

    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map("default").metadata.resource_version

    def watched(timeout_s: int) -> list[tuple[str, str, int]]:
        return [(event["type"], event["object"].metadata.name, int(event["object"].metadata.resource_version))
                for event in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                  label_selector="burst=1", resource_version=start,
                                                  timeout_seconds=timeout_s)]
    with ThreadPoolExecutor(17) as pool:
        live = pool.submit(watched, 8)  # open while the burst happens
        list(pool.map(lambda i: core.create_namespaced_config_map("default", {
            "metadata": {"name": f"burst-{i}", "labels": {"burst": "1"}}, "data": {"i": "x" * 2000}}), range(300)))
        replayed = watched(2)  # from the cache, after it
        for seen in (live.result(), replayed):
            assert sorted(name for _, name, _ in seen) == sorted(f"burst-{i}" for i in range(300))
            assert {kind for kind, _, _ in seen} == {"ADDED"}
            versions = [rv for _, _, rv in seen]
            assert versions == sorted(versions)


def test_scale_subresource_through_strategic_merge(api):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", {
        "metadata": {"name": "scaled"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "scaled"}},
                 "template": {"metadata": {"labels": {"app": "scaled"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    scale = apps.patch_namespaced_deployment_scale("scaled", "default", {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4 and scale.status.selector == "app=scaled"
    got = apps.read_namespaced_deployment("scaled", "default")
    assert got.spec.replicas == 4 and got.metadata.generation == 2


def test_twenty_clients_incrementing_one_annotation_count_exactly(api):
    """Optimistic concurrency: read-modify-write with retries on 409 loses no increment."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "counter", "annotations": {"n": "0"}}})
    conflicts, errors = [0], []

    def increment(times: int) -> None:
        try:
            for _ in range(times):
                while True:
                    current = core.read_namespaced_config_map("counter", "default")
                    current.metadata.annotations["n"] = str(int(current.metadata.annotations["n"]) + 1)
                    try:
                        core.replace_namespaced_config_map("counter", "default", current)
                        break
                    except ApiException as err:
                        if err.status != 409:
                            raise
                        conflicts[0] += 1
        except Exception as err:  # reported below: a thread's exception would be lost
            errors.append(err)
    threads = [threading.Thread(target=increment, args=(3,)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert core.read_namespaced_config_map("counter", "default").metadata.annotations["n"] == "60"
    assert conflicts[0] > 0  # the clients really did collide


def test_a_write_on_one_api_server_is_seen_by_a_watch_on_the_other(plane):
    first = client.CoreV1Api(config.new_client_from_config(str(plane.kubeconfig(server=plane.servers[0]))))
    second = client.CoreV1Api(config.new_client_from_config(str(plane.kubeconfig(server=plane.servers[1]))))
    assert second.api_client.configuration.host == plane.servers[1] != plane.servers[0]
    start = second.list_namespaced_config_map("default").metadata.resource_version
    first.create_namespaced_config_map("default", {"metadata": {"name": "shared", "labels": {"s": "1"}},
                                                   "data": {"k": "v"}})
    events = [(e["type"], e["object"].data) for e in watch.Watch().stream(
        second.list_namespaced_config_map, "default", label_selector="s=1", resource_version=start,
        timeout_seconds=3)]
    assert events == [("ADDED", {"k": "v"})]


def test_create_namespaced_secret_folds_string_data_and_defaults_the_type(api):
    core = client.CoreV1Api(api)
    created = core.create_namespaced_secret("default", {"metadata": {"name": "py-secret"},
                                                        "stringData": {"user": "admin"}, "data": {"pw": "czNjcmV0"}})
    assert created.type == "Opaque" and created.string_data is None
    assert created.data == {"user": "YWRtaW4=", "pw": "czNjcmV0"}
    assert core.read_namespaced_secret("py-secret", "default").data["user"] == "YWRtaW4="


def test_server_side_apply_through_the_dynamic_client(api):
    from kubernetes.dynamic import DynamicClient

    deployments = DynamicClient(api).resources.get(api_version="apps/v1", kind="Deployment")
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "py-applied"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "py"}},
                         "template": {"metadata": {"labels": {"app": "py"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    applied = deployments.server_side_apply(body=manifest, namespace="default", field_manager="py-tool")
    assert applied.spec.replicas == 2
    assert [(e.manager, e.operation) for e in applied.metadata.managedFields] == [("py-tool", "Apply")]
    rival = {**manifest, "spec": {**manifest["spec"], "replicas": 3}}
    with pytest.raises(ApiException) as conflict:
        deployments.server_side_apply(body=rival, namespace="default", field_manager="other")
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["details"]["causes"][0]["field"] == ".spec.replicas"
    forced = deployments.server_side_apply(body=rival, namespace="default", field_manager="other", force_conflicts=True)
    assert forced.spec.replicas == 3
