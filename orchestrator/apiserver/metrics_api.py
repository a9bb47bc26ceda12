"""`metrics.k8s.io/v1beta1`: NodeMetrics and PodMetrics for `kubectl top`, read from the kubelets'
/stats/summary on request, as metrics-server serves them (usage over the kubelet's last sampling
window: cpu in nanocores, memory as the working set).

    GET /apis/metrics.k8s.io/v1beta1/nodes[/NAME]
    GET /apis/metrics.k8s.io/v1beta1/[namespaces/NS/]pods[/NAME]

A kubelet that does not answer leaves its node (and its pods) out of a list, as metrics-server
does; asked for by name, they are a 404.
"""

from __future__ import annotations

import logging

import trio

from orchestrator.api import nodes, selectors, timestamps
from orchestrator.api.resources import BY_PATH
from orchestrator.apiserver import errors
from orchestrator.apiserver.kubelet_client import KubeletClient

log = logging.getLogger("ketch.apiserver.metrics")
GROUP_VERSION = "metrics.k8s.io/v1beta1"
NODES = BY_PATH[("", "v1", "nodes")]
WINDOW = "10s"


def _cpu(nano_cores: int) -> str:
    return f"{int(nano_cores)}n"


def _memory(bytes_: int) -> str:
    return f"{int(bytes_) // 1024}Ki"


def node_metrics(summary: dict) -> dict:
    node = summary.get("node") or {}
    cpu, memory = node.get("cpu") or {}, node.get("memory") or {}
    return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": node.get("nodeName", ""), "creationTimestamp": timestamps.now()},
            "timestamp": cpu.get("time") or timestamps.now(), "window": WINDOW,
            "usage": {"cpu": _cpu(cpu.get("usageNanoCores", 0)), "memory": _memory(memory.get("workingSetBytes", 0))}}


def pod_metrics(summary: dict) -> list[dict]:
    out = []
    for pod in summary.get("pods") or []:
        ref = pod.get("podRef") or {}
        containers = [{"name": c.get("name", ""),
                       "usage": {"cpu": _cpu((c.get("cpu") or {}).get("usageNanoCores", 0)),
                                 "memory": _memory((c.get("memory") or {}).get("workingSetBytes", 0))}}
                      for c in pod.get("containers") or []]
        out.append({"kind": "PodMetrics", "apiVersion": GROUP_VERSION,
                    "metadata": {"name": ref.get("name", ""), "namespace": ref.get("namespace", ""),
                                 "creationTimestamp": timestamps.now()},
                    "timestamp": (pod.get("cpu") or {}).get("time") or timestamps.now(), "window": WINDOW,
                    "containers": containers})
    return out


async def summaries(store, kubelet: KubeletClient, only_node: str | None = None) -> list[dict]:
    """The /stats/summary of every (or one) node's kubelet, asked at once; silent ones left out."""
    listed, _, _ = await store.list(NODES, None)
    targets = [n for n in listed if only_node is None or n["metadata"]["name"] == only_node]
    found: list[dict] = []

    async def ask(node: dict) -> None:
        if not nodes.internal_ip(node):
            return
        try:
            with trio.move_on_after(5.0):
                found.append(await kubelet.get_json(node, "/stats/summary"))
        except errors.APIError as err:
            log.info("event=summary_failed node=%s error=%s", node["metadata"]["name"], err)
    async with trio.open_nursery() as nursery:
        for node in targets:
            nursery.start_soon(ask, node)
    return found


async def serve(request, store, kubelet: KubeletClient, rest: list[str]) -> None:
    """rest: the path after /apis/metrics.k8s.io/v1beta1/."""
    if request.method != "GET":
        raise errors.method_not_allowed()
    labels = selectors.parse_label_selector(request.query.get("labelSelector"))
    if rest[:1] == ["nodes"] and len(rest) <= 2:
        name = rest[1] if len(rest) == 2 else None
        items = [node_metrics(s) for s in await summaries(store, kubelet, name)]
        if name:
            if not items:
                raise errors.APIError(404, "NotFound", f'nodemetrics.metrics.k8s.io "{name}" not found')
            return await request.json(200, items[0])
        nodes_by_name = {n["metadata"]["name"]: n for n in (await store.list(NODES, None))[0]}
        items = [m for m in items if selectors.labels_match(labels, nodes_by_name.get(m["metadata"]["name"], m))]
        return await request.json(200, {"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "metadata": {},
                                        "items": items})
    namespace, name = None, None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if rest[:1] != ["pods"] or len(rest) > 2:
        raise errors.no_such_path(request.path)
    name = rest[1] if len(rest) == 2 else None
    pods_resource = BY_PATH[("", "v1", "pods")]
    pod_objects = {(p["metadata"]["namespace"], p["metadata"]["name"]): p
                   for p in (await store.list(pods_resource, namespace))[0]}
    items = [m for s in await summaries(store, kubelet) for m in pod_metrics(s)
             if (namespace is None or m["metadata"]["namespace"] == namespace)
             and (name is None or m["metadata"]["name"] == name)]
    items = [m for m in items if (m["metadata"]["namespace"], m["metadata"]["name"]) in pod_objects
             and selectors.labels_match(labels, pod_objects[(m["metadata"]["namespace"], m["metadata"]["name"])])]
    if name:
        if not items:
            raise errors.APIError(404, "NotFound", f'podmetrics.metrics.k8s.io "{namespace}/{name}" not found')
        return await request.json(200, items[0])
    await request.json(200, {"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
