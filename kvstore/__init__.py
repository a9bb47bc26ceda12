"""Ketch's etcd role: an MVCC key-value store replicated with Raft.

The pure core lives in `state_machine` (dispatch), `mvcc` (keys, revisions, history, watch feed),
`leases`, `sessions` (exactly-once writes), `requests` (parsing and validation) and `snapshot`.
Nothing in those modules reads a clock, touches a socket or draws a random number.
"""

from kvstore.errors import ErrorCode, KVError
from kvstore.state_machine import StateMachine

__all__ = ["ErrorCode", "KVError", "StateMachine"]
