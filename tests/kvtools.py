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


class Strict:
    """A StateMachine whose only allowed failure is a typed KVError. Any other exception raised
    by it becomes the test's AssertionError: errors are typed (a crash is a broken rule), and the
    mutation check counts a mutant as caught only when an assertion fails."""

    def __init__(self, machine: StateMachine) -> None:
        self.machine = machine

    def __getattr__(self, name: str):
        return getattr(self.machine, name)

    @staticmethod
    def _call(function, *args, **kw):
        try:
            return function(*args, **kw)
        except KVError:
            raise
        except Exception as err:
            raise AssertionError(f"{function.__name__}{args!r} crashed: {type(err).__name__}: {err}") from err

    def apply(self, command):
        return self._call(self.machine.apply, command)

    def apply_safely(self, command):
        return self._call(self.machine.apply_safely, command)

    def watch_events(self, *args, **kw):
        return self._call(self.machine.watch_events, *args, **kw)

    def dump(self) -> bytes:
        """The snapshot; a machine that cannot even be snapshotted has broken a rule."""
        from kvstore import snapshot
        return self._call(snapshot.dump, self.machine)

    def apply_ok(self, command) -> dict:
        """A command that must succeed: a KVError is an assertion failure too."""
        try:
            return self.apply(command)
        except KVError as err:
            raise AssertionError(f"{command!r} failed: {err}") from err
