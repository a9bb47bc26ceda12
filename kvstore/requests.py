"""Commands on the wire -> typed, validated requests (pure).

Theory of operation: a command is a msgpack-friendly dict with an ``op`` field. `parse_command`
checks its shape completely (types, sizes, limits, txn key overlaps) *before* the state machine
looks at it, so that a command either applies whole or fails with a `KVError` and changes
nothing. What can only be decided against the state (unknown lease, compacted revision) is checked
by the state machine before it mutates anything.

Wire format of each op (optional fields in brackets; bytes are msgpack bin):

    range        key, [range_end], [limit=0], [revision=0], [keys_only], [count_only], [serializable]
    put          key, value, [lease=0], [prev_kv]
    delete_range key, [range_end], [prev_kv]
    txn          [compare=[{target, result, key, [range_end], value}]], [success=[op...]], [failure=[op...]]
    compact      revision
    lease_grant  ttl, now, [id=0]           lease_revoke     id
    lease_keepalive id, now                 lease_expire     now
    lease_promote now, extend               lease_time_to_live id, now, [keys]
    lease_leases                            status

Writes may carry ``client_id`` (bytes or str) and ``seq`` (int) for exactly-once application.
``now`` and ``extend`` are the proposing leader's clock in seconds: the machine never reads a clock.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

from kvstore.errors import ErrorCode, KVError, invalid

MAX_REQUEST_BYTES = 1_572_864  # etcd's --max-request-bytes default (1.5 MiB)
MAX_KEY_BYTES = 8 * 1024
MAX_TXN_OPS = 128  # etcd's --max-txn-ops default
MAX_TXN_DEPTH = 8
MAX_LEASE_TTL_S = 9_000_000_000  # etcd's MaxLeaseTTL
REQUEST_OVERHEAD_BYTES = 16  # rough per-op framing, so many tiny ops still count

COMPARE_TARGETS = ("value", "version", "create_revision", "mod_revision", "lease")
COMPARE_RESULTS = ("=", "!=", "<", ">")

WRITE_OPS = frozenset(
    {"put", "delete_range", "txn", "compact", "lease_grant", "lease_revoke",
     "lease_keepalive", "lease_expire", "lease_promote"}
)
READ_OPS = frozenset({"range", "lease_time_to_live", "lease_leases", "status"})


class RangeRequest(NamedTuple):
    key: bytes
    range_end: bytes | None = None
    limit: int = 0
    revision: int = 0
    keys_only: bool = False
    count_only: bool = False


class PutRequest(NamedTuple):
    key: bytes
    value: bytes
    lease: int = 0
    prev_kv: bool = False


class DeleteRangeRequest(NamedTuple):
    key: bytes
    range_end: bytes | None = None
    prev_kv: bool = False


class Compare(NamedTuple):
    target: str
    result: str
    key: bytes
    range_end: bytes | None
    value: bytes | int


class TxnRequest(NamedTuple):
    compare: tuple[Compare, ...]
    success: tuple[Any, ...]
    failure: tuple[Any, ...]


class CompactRequest(NamedTuple):
    revision: int


class LeaseGrantRequest(NamedTuple):
    ttl: int
    now: float
    id: int = 0


class LeaseRevokeRequest(NamedTuple):
    id: int


class LeaseKeepAliveRequest(NamedTuple):
    id: int
    now: float


class LeaseExpireRequest(NamedTuple):
    now: float


class LeasePromoteRequest(NamedTuple):
    now: float
    extend: float


class LeaseTimeToLiveRequest(NamedTuple):
    id: int
    now: float
    keys: bool = False


class LeaseLeasesRequest(NamedTuple):
    pass


class StatusRequest(NamedTuple):
    pass


TxnOp = Union[RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest]


class Command(NamedTuple):
    """A parsed command: the request, and the exactly-once tag if the client sent one."""

    op: str
    request: Any
    client_id: bytes | str | None = None
    seq: int | None = None


# --- field readers --------------------------------------------------------------------------


def _field(cmd: dict, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    value = cmd.get(name, default)
    if type(value) is kind:  # the common case, exact type: nothing more to check
        return value
    if value is ...:
        raise invalid(f"{name} is required")
    if value is None and default is None:
        return None
    # bool is an int in Python; never accept it where a number is meant, or vice versa.
    if isinstance(value, bool) and kind is not bool:
        raise invalid(f"{name} must be {_kind_name(kind)}")
    if not isinstance(value, kind):
        raise invalid(f"{name} must be {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({bytes: "bytes", int: "an integer", float: "a number", bool: "a boolean",
                        list: "a list", str: "a string"}.get(k, k.__name__) for k in kinds)


def _key(cmd: dict) -> bytes:
    key = _field(cmd, "key", bytes)
    if not key:
        raise invalid("key is not provided")
    if len(key) > MAX_KEY_BYTES:
        raise invalid(f"key is longer than {MAX_KEY_BYTES} bytes")
    return key


def _range_end(cmd: dict) -> bytes | None:
    end = _field(cmd, "range_end", bytes, None)
    if end is not None and len(end) > MAX_KEY_BYTES:
        raise invalid(f"range_end is longer than {MAX_KEY_BYTES} bytes")
    return end or None


def _non_negative(cmd: dict, name: str, default: Any = ...) -> int:
    value = _field(cmd, name, int, default)
    if value < 0:
        raise invalid(f"{name} must not be negative")
    return value


def _time(cmd: dict, name: str) -> float:
    value = _field(cmd, name, (int, float))
    if value != value or value in (float("inf"), float("-inf")):
        raise invalid(f"{name} must be a finite number")
    return float(value)


def _flag(cmd: dict, name: str) -> bool:
    return _field(cmd, name, bool, False)


# --- per-op parsers -----------------------------------------------------------------------


def _parse_range(cmd: dict) -> RangeRequest:
    return RangeRequest(
        _key(cmd), _range_end(cmd), _non_negative(cmd, "limit", 0),
        _non_negative(cmd, "revision", 0), _flag(cmd, "keys_only"), _flag(cmd, "count_only"),
    )


def _parse_put(cmd: dict) -> PutRequest:
    return PutRequest(_key(cmd), _field(cmd, "value", bytes), _non_negative(cmd, "lease", 0),
                      _flag(cmd, "prev_kv"))


def _parse_delete_range(cmd: dict) -> DeleteRangeRequest:
    return DeleteRangeRequest(_key(cmd), _range_end(cmd), _flag(cmd, "prev_kv"))


def _parse_compare(raw: Any) -> Compare:
    if not isinstance(raw, dict):
        raise invalid("a compare must be a map")
    target = _field(raw, "target", str)
    if target not in COMPARE_TARGETS:
        raise invalid(f"unknown compare target {target!r}")
    result = _field(raw, "result", str)
    if result not in COMPARE_RESULTS:
        raise invalid(f"unknown compare result {result!r}")
    value = _field(raw, "value", bytes if target == "value" else int)
    return Compare(target, result, _key(raw), _range_end(raw), value)


def _parse_txn(cmd: dict, depth: int = 0) -> TxnRequest:
    if depth >= MAX_TXN_DEPTH:
        raise invalid(f"txn nested deeper than {MAX_TXN_DEPTH}")
    compares = tuple(_parse_compare(c) for c in _field(cmd, "compare", list, []))
    success = tuple(_parse_txn_op(op, depth) for op in _field(cmd, "success", list, []))
    failure = tuple(_parse_txn_op(op, depth) for op in _field(cmd, "failure", list, []))
    for branch in (success, failure):
        if _count_ops(branch) > MAX_TXN_OPS:
            raise invalid("too many operations in txn request")
        _check_no_overlapping_writes(branch)
    return TxnRequest(compares, success, failure)


_TXN_OP_PARSERS = {"range": _parse_range, "put": _parse_put, "delete_range": _parse_delete_range}


def _parse_txn_op(raw: Any, depth: int) -> TxnOp:
    if not isinstance(raw, dict):
        raise invalid("a txn operation must be a map")
    op = raw.get("op")
    if op == "txn":
        return _parse_txn(raw, depth + 1)
    parser = _TXN_OP_PARSERS.get(op)  # type: ignore[arg-type]
    if parser is None:
        raise invalid(f"unknown txn operation {op!r}")
    return parser(raw)


def _count_ops(branch: tuple[TxnOp, ...]) -> int:
    total = 0
    for op in branch:
        total += 1
        if isinstance(op, TxnRequest):
            total += max(_count_ops(op.success), _count_ops(op.failure))
    return total


def _check_no_overlapping_writes(branch: tuple[TxnOp, ...]) -> tuple[set[bytes], list]:
    """etcd's checkIntervals: a branch may not put one key twice, nor put a key it also deletes.
    The two branches of a nested txn exclude each other, so they may write the same key.
    Answers the branch's puts and deletes, for the level above."""
    puts: set[bytes] = set()
    deletes = [(op.key, op.range_end) for op in branch if isinstance(op, DeleteRangeRequest)]

    def add_put(key: bytes, allowed_twice: set[bytes] = frozenset()) -> None:
        if (key in puts and key not in allowed_twice) or any(
                in_range(key, start, end) for start, end in deletes):
            raise invalid("duplicate key given in txn request")
        puts.add(key)

    for op in branch:
        if isinstance(op, TxnRequest):
            then_puts, then_deletes = _check_no_overlapping_writes(op.success)
            else_puts, else_deletes = _check_no_overlapping_writes(op.failure)
            for key in then_puts:
                add_put(key)
            for key in else_puts:
                add_put(key, allowed_twice=then_puts)
            deletes += then_deletes + else_deletes
    for op in branch:
        if isinstance(op, PutRequest):
            add_put(op.key)
    return puts, deletes


def in_range(key: bytes, start: bytes, end: bytes | None) -> bool:
    """Is key inside etcd's [start, end) interval? end None = the single key; b"\\0" = no end."""
    if end is None:
        return key == start
    if end == b"\0":
        return key >= start
    return start <= key < end


def _parse_compact(cmd: dict) -> CompactRequest:
    revision = _field(cmd, "revision", int)
    if revision <= 0:
        raise invalid("compaction revision must be positive")
    return CompactRequest(revision)


def _lease_id(cmd: dict, default: Any = ...) -> int:
    lease_id = _field(cmd, "id", int, default)
    if lease_id < 0 or lease_id >= 2**63:
        raise invalid("lease id must be in [0, 2^63)")
    return lease_id


def _parse_lease_grant(cmd: dict) -> LeaseGrantRequest:
    ttl = _field(cmd, "ttl", int)
    if ttl > MAX_LEASE_TTL_S:
        raise invalid("lease TTL exceeds the maximum lease TTL")
    return LeaseGrantRequest(ttl, _time(cmd, "now"), _lease_id(cmd, 0))


def _parse_lease_promote(cmd: dict) -> LeasePromoteRequest:
    extend = _time(cmd, "extend")
    if extend < 0:
        raise invalid("extend must not be negative")
    return LeasePromoteRequest(_time(cmd, "now"), extend)


_PARSERS = {
    "range": _parse_range,
    "put": _parse_put,
    "delete_range": _parse_delete_range,
    "txn": _parse_txn,
    "compact": _parse_compact,
    "lease_grant": _parse_lease_grant,
    "lease_revoke": lambda c: LeaseRevokeRequest(_lease_id(c)),
    "lease_keepalive": lambda c: LeaseKeepAliveRequest(_lease_id(c), _time(c, "now")),
    "lease_expire": lambda c: LeaseExpireRequest(_time(c, "now")),
    "lease_promote": _parse_lease_promote,
    "lease_time_to_live": lambda c: LeaseTimeToLiveRequest(_lease_id(c), _time(c, "now"), _flag(c, "keys")),
    "lease_leases": lambda c: LeaseLeasesRequest(),
    "status": lambda c: StatusRequest(),
}


def request_size(cmd: Any) -> int:
    """The bytes a command carries, for the 1.5 MiB limit: every bytes/str payload plus framing."""
    total = 0
    stack = [cmd]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is bytes or kind is str:
            total += len(item)
        elif kind is dict:
            total += REQUEST_OVERHEAD_BYTES
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            total += 8
    return total


def check_size(size: int) -> None:
    if size > MAX_REQUEST_BYTES:
        raise KVError(ErrorCode.TOO_LARGE, "request is too large", limit=MAX_REQUEST_BYTES)


def parse_command(cmd: Any) -> Command:
    """Validate a wire command completely. Raises `KVError`; never anything else."""
    if not isinstance(cmd, dict):
        raise invalid("a command must be a map")
    op = cmd.get("op")
    parser = _PARSERS.get(op) if isinstance(op, str) else None
    if parser is None:
        raise invalid(f"unknown operation {op!r}")
    if op == "put":  # the hot path: size from its two payloads, no recursion
        value = cmd.get("value")
        key = cmd.get("key")
        if isinstance(value, bytes) and isinstance(key, bytes):
            check_size(len(key) + len(value))
    else:
        check_size(request_size(cmd))
    client_id = cmd.get("client_id")
    seq = cmd.get("seq")
    if client_id is not None or seq is not None:
        if op not in WRITE_OPS:
            raise invalid("client_id and seq are only for writes")
        if not isinstance(client_id, (bytes, str)) or not client_id:
            raise invalid("client_id must be non-empty bytes or a string")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise invalid("seq must be a non-negative integer")
    return Command(op, parser(cmd), client_id, seq)
