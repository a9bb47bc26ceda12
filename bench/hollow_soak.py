"""Hollow nodes held for a while against a separately started control plane: is every node Ready
throughout, and does every process stay up?

    python bench/hollow_soak.py [--nodes 1000] [--minutes 10] [--out bench/results/hollow_soak.json]

Starts a 3-member kv cluster, an API server, the controller manager (node monitor grace 40 s,
Kubernetes' default, for hollow heartbeats of 10 s, also Kubernetes' default) and the scheduler,
then one `ketch hollow-nodes --count N` process; once every node is Ready, samples the nodes
every 10 s for --minutes. Prints the lowest Ready count seen and writes every sample as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.lab.local_plane import LocalControlPlane

ROOT = Path(__file__).resolve().parent.parent


def ready_count(plane: LocalControlPlane) -> tuple[int, int]:
    nodes = json.loads(plane.kubectl("get", "nodes", "-o", "json", timeout=120).stdout)["items"]
    ready = sum(1 for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in (n.get("status") or {}).get("conditions") or []))
    return len(nodes), ready


def soak(plane: LocalControlPlane, count: int, minutes: float) -> list[dict]:
    plane.start_components(count, controller_args=("--cluster-cidr", "10.128.0.0/9", "--node-monitor-grace-seconds",
                                                   "40"), ready_timeout_s=180)
    samples, start = [], time.monotonic()
    while time.monotonic() - start < minutes * 60:
        total, ready = ready_count(plane)
        samples.append({"at_s": round(time.monotonic() - start), "nodes": total, "ready": ready,
                        "processes_up": all(p.poll() is None for p in plane.processes)})
        print(samples[-1], flush=True)
        time.sleep(10)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hollow_soak.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ketch-bench-soak-") as work:
        plane = LocalControlPlane(Path(work), api_workers=1)
        try:
            plane.start()
            samples = soak(plane, args.nodes, args.minutes)
        finally:
            plane.stop()
    lowest = min(s["ready"] for s in samples)
    up = all(s["processes_up"] for s in samples)
    print(f"{args.nodes} hollow nodes, {len(samples)} samples over {args.minutes:g} min: lowest Ready {lowest}, "
          f"every process up throughout: {up}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"nodes": args.nodes, "minutes": args.minutes, "samples": samples}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if lowest == args.nodes and up else 1


if __name__ == "__main__":
    sys.exit(main())
