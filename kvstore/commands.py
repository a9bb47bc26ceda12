"""Builders for wire commands (see `requests` for the format). Clients and tests use these,
so the shape of a command is written down once."""

from __future__ import annotations

from typing import Any


def _opt(cmd: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Add only the fields that differ from their defaults, to keep frames small."""
    cmd.update({k: v for k, v in fields.items() if v not in (None, False, 0, b"")})
    return cmd


def _stamped(cmd: dict[str, Any], now: float | None) -> dict[str, Any]:
    """Time 0 is a time; only a missing time is left for the receiving member to stamp."""
    if now is not None:
        cmd["now"] = now
    return cmd


def range_(key: bytes, range_end: bytes | None = None, *, limit: int = 0, revision: int = 0,
           keys_only: bool = False, count_only: bool = False) -> dict[str, Any]:
    return _opt({"op": "range", "key": key}, range_end=range_end, limit=limit,
                revision=revision, keys_only=keys_only, count_only=count_only)


def put(key: bytes, value: bytes, *, lease: int = 0, prev_kv: bool = False) -> dict[str, Any]:
    return _opt({"op": "put", "key": key, "value": value}, lease=lease, prev_kv=prev_kv)


def delete_range(key: bytes, range_end: bytes | None = None, *, prev_kv: bool = False) -> dict[str, Any]:
    return _opt({"op": "delete_range", "key": key}, range_end=range_end, prev_kv=prev_kv)


def compare(key: bytes, target: str, result: str, value: bytes | int,
            range_end: bytes | None = None) -> dict[str, Any]:
    return _opt({"target": target, "result": result, "key": key, "value": value},
                range_end=range_end)


def txn(compares: list[dict] = (), success: list[dict] = (), failure: list[dict] = ()) -> dict[str, Any]:
    return {"op": "txn", "compare": list(compares), "success": list(success),
            "failure": list(failure)}


def compact(revision: int) -> dict[str, Any]:
    return {"op": "compact", "revision": revision}


def lease_grant(ttl: int, now: float | None = None, lease_id: int = 0) -> dict[str, Any]:
    """Without `now`, the member that receives it stamps its own time (clients never send time)."""
    return _stamped(_opt({"op": "lease_grant", "ttl": ttl}, id=lease_id), now)


def lease_revoke(lease_id: int) -> dict[str, Any]:
    return {"op": "lease_revoke", "id": lease_id}


def lease_keepalive(lease_id: int, now: float | None = None) -> dict[str, Any]:
    return _stamped({"op": "lease_keepalive", "id": lease_id}, now)


def lease_expire(now: float) -> dict[str, Any]:
    return {"op": "lease_expire", "now": now}


def lease_promote(now: float, extend: float) -> dict[str, Any]:
    return {"op": "lease_promote", "now": now, "extend": extend}


def lease_time_to_live(lease_id: int, now: float | None = None, keys: bool = False) -> dict[str, Any]:
    return _stamped(_opt({"op": "lease_time_to_live", "id": lease_id}, keys=keys), now)


def status() -> dict[str, Any]:
    return {"op": "status"}


def tagged(command: dict[str, Any], client_id: bytes | str, seq: int) -> dict[str, Any]:
    """The same write, tagged for exactly-once application."""
    return {**command, "client_id": client_id, "seq": seq}


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key starting with prefix" (clientv3.GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # all bytes 0xff (or empty prefix): every key from prefix on
