"""Exactly-once writes (pure): remember each client's recent results by sequence number.

Theory of operation (client sessions, Ongaro's Raft dissertation §6.3): a client tags each write
with (client_id, seq). Applying a tag seen before returns the recorded result and changes nothing,
so a write retried after a timeout or a leader change is applied once.

Bounds, both deterministic so every member evicts the same entries:
- per client, the results of its last MAX_RESULTS_PER_CLIENT sequence numbers. A retry of an older
  sequence number than that answers INVALID_ARGUMENT ("outcome unknown"): a client keeps at most
  that many writes in flight;
- at most MAX_CLIENTS clients; the one that wrote least recently is forgotten first. A client idle
  while MAX_CLIENTS others wrote loses its protection against duplicates.
Only successful writes are recorded: a failed write changed nothing, so running it again is safe.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from kvstore.errors import ErrorCode, KVError

MAX_CLIENTS = 10_000
MAX_RESULTS_PER_CLIENT = 64


class ClientSession:
    __slots__ = ("results", "floor")

    def __init__(self, results: dict[int, Any] | None = None, floor: int = -1) -> None:
        self.results: dict[int, Any] = results or {}
        self.floor = floor  # the highest sequence number whose result was forgotten


class SessionTable:
    def __init__(self) -> None:
        self.clients: OrderedDict[bytes | str, ClientSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self.clients)

    def recorded(self, client_id: bytes | str, seq: int) -> Any | None:
        """The result recorded for (client_id, seq), or None if it has not been applied."""
        session = self.clients.get(client_id)
        if session is None:
            return None
        if seq in session.results:
            return session.results[seq]
        if seq <= session.floor:
            raise KVError(
                ErrorCode.INVALID_ARGUMENT,
                f"seq {seq} is older than the last {MAX_RESULTS_PER_CLIENT} writes remembered "
                "for this client; its outcome is unknown",
                outcome_unknown=True,
            )
        return None

    def record(self, client_id: bytes | str, seq: int, result: Any) -> None:
        session = self.clients.get(client_id)
        if session is None:
            session = self.clients[client_id] = ClientSession()
        else:
            self.clients.move_to_end(client_id)
        session.results[seq] = result
        if len(session.results) > MAX_RESULTS_PER_CLIENT:
            oldest = min(session.results)
            del session.results[oldest]
            session.floor = max(session.floor, oldest)
        if len(self.clients) > MAX_CLIENTS:
            self.clients.popitem(last=False)
