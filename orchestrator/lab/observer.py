"""Watch who leads: ask every member for its status a few times a second, one JSON line per answer.

    python -m orchestrator.lab.observer --endpoints A,B,C --token-file F --out leaders.jsonl --duration 60

Each line is {"time", "member" (index in --endpoints), "leader" (peer address or null), "term",
"has_quorum"} or {"time", "member", "error"} when the member did not answer in time (paused,
killed, cut off from this host). Status is answered from the member's local state, so a member
without quorum still says whom it last followed. The chaos run reads the newest lines to find
the leader to isolate, and the summary counts leader changes from the whole file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio

from kvstore.client import ConnectionLost, KVClient
from kvstore.errors import KVError

INTERVAL_S = 0.25
ANSWER_TIMEOUT_S = 0.5


async def ask(index: int, kv: KVClient) -> dict:
    try:
        with trio.fail_after(ANSWER_TIMEOUT_S):
            status = await kv.status()
        return {"member": index, "leader": status.get("leader"), "term": status.get("raft_term"),
                "has_quorum": status.get("has_quorum")}
    except (trio.TooSlowError, KVError, ConnectionLost, OSError) as err:
        return {"member": index, "error": type(err).__name__}


async def observe(endpoints: list[str], token: str, out: Path, duration_s: float) -> None:
    deadline = time.monotonic() + duration_s
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(KVClient([e], token, timeout_s=ANSWER_TIMEOUT_S))
                   for e in endpoints]  # one per member: a status must come from that member
        log = stack.enter_context(open(out, "a"))
        while time.monotonic() < deadline:
            answers: list[dict] = []

            async def one(i: int, into: list[dict] = answers) -> None:
                into.append(await ask(i, clients[i]))
            async with trio.open_nursery() as nursery:
                for i in range(len(clients)):
                    nursery.start_soon(one, i)
            now = time.monotonic()
            for answer in sorted(answers, key=lambda a: a["member"]):
                log.write(json.dumps({"time": now, **answer}) + "\n")
            log.flush()
            await trio.sleep(INTERVAL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    token = Path(args.token_file).read_text().split()[0]
    trio.run(observe, args.endpoints.split(","), token, args.out, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
