"""Typed errors of the kv store. Every failure a client can see is a `KVError` with a code.

The codes are DESIGN §3's, plus FUTURE_REVISION (etcd's ErrFutureRev: a read or compaction at a
revision the store has not reached yet), which clients must tell apart from bad input.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    NOT_LEADER = "NOT_LEADER"
    UNAVAILABLE = "UNAVAILABLE"
    COMPACTED = "COMPACTED"
    FUTURE_REVISION = "FUTURE_REVISION"
    TXN_CONFLICT = "TXN_CONFLICT"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    TOO_LARGE = "TOO_LARGE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    LEASE_NOT_FOUND = "LEASE_NOT_FOUND"


class KVError(Exception):
    """A failure with a code, a human message and optional details (e.g. compact_revision)."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = ErrorCode(code)
        self.message = message
        self.details = details

    def to_wire(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, **self.details}

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> KVError:
        details = {k: v for k, v in wire.items() if k not in ("code", "message")}
        return cls(ErrorCode(wire["code"]), wire["message"], **details)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KVError) and self.to_wire() == other.to_wire()

    __hash__ = Exception.__hash__


def unavailable(message: str, ambiguous: bool) -> KVError:
    """The cluster could not do it now. ambiguous=True: a write that may still have applied."""
    return KVError(ErrorCode.UNAVAILABLE, message, ambiguous=ambiguous)


def invalid(message: str) -> KVError:
    return KVError(ErrorCode.INVALID_ARGUMENT, message)


def compacted(compact_revision: int) -> KVError:
    return KVError(
        ErrorCode.COMPACTED,
        "required revision has been compacted",
        compact_revision=compact_revision,
    )


def future_revision(current_revision: int) -> KVError:
    return KVError(
        ErrorCode.FUTURE_REVISION,
        "required revision is a future revision",
        current_revision=current_revision,
    )


def lease_not_found(lease_id: int) -> KVError:
    return KVError(ErrorCode.LEASE_NOT_FOUND, "requested lease not found", lease_id=lease_id)
