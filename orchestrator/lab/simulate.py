"""Histories made for testing and benchmarking the checker (pure; randomness from a seed)."""

from __future__ import annotations

import random

from orchestrator.lab.history import json_row


def simulated_register_history(ops: int, clients: int, seed: int) -> list[str]:
    """A linearizable history by construction: each op takes effect at a random instant inside
    its [call, return] window; outputs follow from applying ops in that order."""
    rng = random.Random(seed)
    planned = []
    clock = [0.0] * clients
    for i in range(ops):
        client = i % clients
        call = clock[client] + rng.uniform(0, 1)
        ret = call + rng.uniform(0.1, 3)
        clock[client] = ret
        kind = rng.choice(["read", "read", "write", "cas"])
        value = [rng.randrange(5), rng.randrange(5)] if kind == "cas" else rng.randrange(5)
        planned.append([rng.uniform(call, ret), client, kind, value, call, ret])
    state, rows = None, []
    for _point, client, kind, value, call, ret in sorted(planned):
        if kind == "read":
            out, status = state, "ok"
        elif kind == "write":
            state, out, status = value, value, "ok"
        else:
            status = "ok" if state == value[0] else "fail"
            state = value[1] if status == "ok" else state
            out = value
        rows.append((call, json_row(client, "invoke", kind, None if kind == "read" else value, time=call)))
        rows.append((ret, json_row(client, status, kind, out, time=ret)))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]
