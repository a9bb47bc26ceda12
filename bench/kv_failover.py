"""Leader failover, measured the same way for etcd and Ketch (`python bench/kv.py --failover`).

For each target: a 3-member cluster on loopback; then, --kills times: find the leader (the
member whose /v3/maintenance/status names itself), open a connection to a surviving member
and make one write through it (so the connection is up and warm), SIGKILL the leader, and time
from the signal to the first acknowledged write through that surviving member. A failed write
is retried at once (5 ms apart) with the same gateway client, as a client that knows a second
member would. The killed member is restarted and the cluster left to settle (one leader, every
member answering, in one term) before the next kill. Prints p50 and max per target and writes
JSON beside the load benchmark's.

Each attempt waits at most WRITE_TIMEOUT_S: etcd holds a write that reaches a member without a
leader until its own request timeout (seconds), so a long client timeout would measure that
timeout rather than the failover (measured: every etcd sample was the 2 s client timeout).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from kv import start_target

from orchestrator.lab.gateway_client import EtcdJSONClient, GatewayError

WRITE_TIMEOUT_S = 0.25
GIVE_UP_S = 30.0
SETTLE_TIMEOUT_S = 60.0


def statuses(gateways: list[str], token: str | None) -> list[dict | None]:
    answers = []
    for gateway in gateways:
        try:
            answers.append(EtcdJSONClient(gateway, token, timeout_s=1.0).status())
        except (GatewayError, OSError):
            answers.append(None)
    return answers


def settled_leader(gateways: list[str], token: str | None) -> int:
    """The leader's index once every member answers, exactly one leads, and all share its term."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        answers = statuses(gateways, token)
        if None not in answers:
            leaders = [i for i, a in enumerate(answers) if a.get("leader") == a["header"]["member_id"]]
            terms = {a.get("raftTerm") for a in answers}
            if len(leaders) == 1 and len(terms) == 1:
                return leaders[0]
        time.sleep(0.2)
    raise TimeoutError(f"no settled leader within {SETTLE_TIMEOUT_S} s: {statuses(gateways, token)}")


def first_write_after_kill(cluster, leader: int, survivor: str, token: str | None, key: bytes) -> float:
    client = EtcdJSONClient(survivor, token, timeout_s=WRITE_TIMEOUT_S)
    client.put(b"failover/warm", b"1")
    killed_at = time.perf_counter()
    cluster.kill(leader)
    while True:
        try:
            client.put(key, b"v")
            return time.perf_counter() - killed_at
        except (GatewayError, OSError, http.client.HTTPException) as err:
            if not isinstance(err, GatewayError):
                client.connection.close()  # timed out mid-request: the next put reconnects
            if time.perf_counter() - killed_at > GIVE_UP_S:
                raise
            time.sleep(0.005)


def measure_target(target: str, kills: int, work_dir: Path) -> dict:
    cluster, gateways, token, _ = start_target(target, work_dir)
    samples = []
    try:
        for k in range(kills):
            leader = settled_leader(gateways, token)
            time.sleep(1.0)  # a settled cluster, not one still catching the restarted member up
            survivor = gateways[(leader + 1) % len(gateways)]
            seconds = first_write_after_kill(cluster, leader, survivor, token, b"failover/k%d" % k)
            samples.append(seconds)
            print(f"{target} kill {k + 1}/{kills}: first write after {seconds * 1000:.0f} ms", flush=True)
            cluster.restart(leader)
            if hasattr(cluster, "wait_ready"):
                cluster.wait_ready()
    finally:
        cluster.stop()
    return {"target": target, "kills": kills, "p50_ms": round(statistics.median(samples) * 1000, 1),
            "max_ms": round(max(samples) * 1000, 1), "samples_ms": [round(s * 1000, 1) for s in samples]}


def run_failover(targets: list[str], kills: int, out: Path) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="ketch-failover-") as tmp:
        for target in targets:
            rows.append(measure_target(target, kills, Path(tmp) / target))
    print(f"\n{'target':6} {'kills':>5} {'p50 ms':>8} {'max ms':>8}")
    for row in rows:
        print(f"{row['target']:6} {row['kills']:5} {row['p50_ms']:8} {row['max_ms']:8}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "kv-failover", "cpus": os.cpu_count(),
                               "load_average": os.getloadavg(), "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0
