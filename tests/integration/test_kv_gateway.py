"""Ketch's etcd v3 JSON gateway against a real etcd: the same client code, the same answers.

Both stores start at revision 1 and get the same requests in the same order, so revisions,
versions and values must match exactly; only what is specific to a cluster (ids, term, lease
ids) is left out of the comparison.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from orchestrator.lab.anchor import EtcdCluster, etcd_binary
from orchestrator.lab.gateway_client import EtcdJSONClient, GatewayError, b64
from tests.integration.conftest import leader_of


def normalize(answer):
    if isinstance(answer, dict):
        return {k: normalize(v) for k, v in answer.items()
                if k not in ("cluster_id", "member_id", "raft_term", "ID", "lease")}
    if isinstance(answer, list):
        return [normalize(v) for v in answer]
    return answer


def script(client: EtcdJSONClient) -> list:
    """A session a user of etcd's gateway might run; answers (or errors) in order."""
    answers = []

    def step(fn, *args, **kw):
        try:
            answers.append(normalize(fn(*args, **kw)))
        except GatewayError as err:
            answers.append({"status": err.status, "code": err.body.get("code"), "error": err.body.get("error")})

    step(client.put, b"/registry/pods/default/a", b"v1")
    step(client.put, b"/registry/pods/default/b", b"v1")
    step(client.put, b"/registry/pods/default/a", b"v2", prev_kv=True)
    step(client.range, b"/registry/pods/", b"/registry/pods0")
    step(client.range, b"/registry/pods/", b"/registry/pods0", limit=1)
    step(client.range, b"/registry/pods/", b"/registry/pods0", count_only=True)
    step(client.range, b"/registry/pods/", b"/registry/pods0", keys_only=True, revision=2)
    step(client.range, b"/registry/pods/default/a", revision=99)
    step(client.cas_put, b"/registry/pods/default/a", b"v3", 4)
    step(client.cas_put, b"/registry/pods/default/a", b"stale", 4)
    step(client.txn, [{"key": b64(b"/new"), "target": "CREATE", "result": "EQUAL", "create_revision": 0}],
         [{"request_put": {"key": b64(b"/new"), "value": b64(b"x")}},
          {"request_delete_range": {"key": b64(b"/registry/pods/default/b")}}])
    step(client.delete, b"/nothing")
    step(client.delete, b"/registry/", b"/registry0", prev_kv=True)
    step(client.range, b"\0", b"\0")
    step(client.compact, 5)
    step(client.compact, 4)
    step(client.range, b"/new", revision=3)
    step(client.put, b"", b"no key")
    lease = client.lease_grant(60)
    step(client.put, b"/leased", b"x", lease=int(lease["ID"]))
    step(lambda: {k: v for k, v in client.lease_ttl(int(lease["ID"]), keys=True).items() if k != "TTL"})
    step(client.lease_revoke, int(lease["ID"]))
    step(client.range, b"/leased")
    step(client.lease_revoke, 424242)
    step(client.lease_ttl, 424242)
    step(client.call, "kv/range", {"key": "not base64!"})
    answers.append([normalize(r) for r in client.watch(b"/", 5, count=3, range_end=b"0")])
    return answers


@pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed (Debian etcd-server; .ci/run installs it)")
async def test_an_etcd_gateway_client_gets_the_same_answers_from_ketch(kv_cluster, tmp_path):
    ketch = kv_cluster(3)
    await leader_of(ketch)
    etcd = EtcdCluster(tmp_path / "etcd", members=1)
    etcd.start()
    try:
        from_etcd = script(EtcdJSONClient(etcd.endpoints[0]))
    finally:
        etcd.stop()
    from_ketch = script(EtcdJSONClient(ketch.gateways[1], token=ketch.token))
    for i, (want, got) in enumerate(zip(from_etcd, from_ketch, strict=True)):
        if isinstance(want, dict) and "error" in want and "not base64" not in json.dumps(want):
            assert (got.get("status"), got.get("code")) == (want["status"], want["code"]), i
            continue
        if i == len(from_etcd) - 2:  # bad base64: both refuse it with HTTP 400, in their own words
            assert got["status"] == want["status"] == 400, (want, got)
            continue
        assert got == want, f"step {i}: etcd {want} ketch {got}"
    assert len(from_etcd) == len(from_ketch)


async def test_the_gateway_wants_the_cluster_token(kv_cluster):
    cluster = kv_cluster(3)
    with pytest.raises(GatewayError) as info:
        EtcdJSONClient(cluster.gateways[0], token="wrong").range(b"a")
    assert info.value.status == 401 and info.value.body["code"] == 16
    with pytest.raises(GatewayError) as info:
        EtcdJSONClient(cluster.gateways[0], token=cluster.token).call("kv/range", {"key": 5})
    assert info.value.status == 400


async def test_healthz_and_metrics(kv_cluster):
    cluster = kv_cluster(3)
    await leader_of(cluster)
    with urllib.request.urlopen(f"http://{cluster.gateways[0]}/healthz", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://{cluster.gateways[0]}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "ketch_kv_revision " in text and "# TYPE ketch_kv_journal_syncs_total counter" in text
