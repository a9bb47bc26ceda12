"""Small helpers for driving a StateMachine in tests."""

from __future__ import annotations

import pytest

from kvstore import KVError, StateMachine
from kvstore import commands as c


def keys_of(result: dict) -> list[bytes]:
    return [kv["key"] for kv in result["kvs"]]


def values_of(result: dict) -> dict[bytes, bytes]:
    return {kv["key"]: kv["value"] for kv in result["kvs"]}


def get(sm: StateMachine, key: bytes, **kw) -> dict | None:
    kvs = sm.apply(c.range_(key, **kw))["kvs"]
    return kvs[0] if kvs else None


def fails(sm: StateMachine, command: dict, code: str) -> KVError:
    """Apply a command that must fail with `code` and must leave the state untouched."""
    from kvstore import snapshot

    before = snapshot.dump(sm)
    with pytest.raises(KVError) as info:
        sm.apply(command)
    assert info.value.code == code, info.value
    assert snapshot.dump(sm) == before, "a failed command changed the state"
    return info.value


def filled(*pairs: tuple[bytes, bytes]) -> StateMachine:
    sm = StateMachine()
    for key, value in pairs:
        sm.apply(c.put(key, value))
    return sm
