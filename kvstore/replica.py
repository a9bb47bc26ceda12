"""A kv member's Raft replica: the pure StateMachine replicated with pysyncobj (pinned 0.3.17).

Theory of operation:
- One replicated entry point, `apply_batch(frame)`, where frame is msgpack [BATCH_VERSION,
  [command, ...]]. pysyncobj numbers replicated methods by sorted name, so a second method
  would silently change what old log entries mean: there is only ever this one.
- Group commit: writes submitted while an entry is being formed go into one batch; a batch is
  proposed on the Raft thread at the start of each loop turn.
- Linearizable reads (Raft §6.4 in spirit, done through the log because pysyncobj has no
  ReadIndex): reads are queued behind a barrier (an empty batch). When the barrier is applied
  locally, every write committed before the reads arrived is applied too, and the queued reads
  run right there on the Raft thread. A deposed leader cannot commit the barrier, so it times
  out instead of answering stale data. Many reads share one barrier.
- Durability: the log is `kvstore.journal.DurableJournal`. Messages pysyncobj sends are queued;
  before the poller blocks and after every tick the journal is synced (fdatasync) and only then
  is the queue sent (etcd's Ready loop: persist, then send). The leader also syncs before it
  counts its own log toward a commit. So an entry is acknowledged only once a quorum has it on
  disk, with one sync per loop turn rather than one per message.
- pysyncobj 0.3.17's leader moves a follower's nextIndex *back* to ack+1 on every success reply,
  even while later entries are in flight; the resend then makes the follower truncate entries it
  had acknowledged (measured; Raft §5.3 allows deleting only conflicting entries). Here a success
  reply never moves nextIndex backwards, which is ordinary pipelined Raft; a follower that really
  lacks entries answers with reset=True and the leader backs up as before.
- Time: the leader proposes `lease_expire(now)` when a lease is due and `lease_promote(now,
  election_max_s)` when it becomes leader, with its wall clock; the state machine never reads one.
- Snapshots are the core's msgpack snapshot, written through pysyncobj's serializer hooks and
  fsync'd; never a pickle of our objects.

Threads: pysyncobj runs on one Raft thread (`_run`). Everything that touches the state machine
runs on it or holds `state_lock`. Callbacks given to this class are called on the Raft thread
and must not block (the trio server hands them over with TrioToken.run_sync_soon).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj import syncobj as _syncobj_module
from pysyncobj.node import TCPNode
from pysyncobj.pipe_notifier import PipeNotifier
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

from kvstore import commands, snapshot
from kvstore.codec import decode, encode
from kvstore.errors import ErrorCode, KVError
from kvstore.journal import DurableJournal, fsync_dir, write_durably
from kvstore.requests import MAX_REQUEST_BYTES
from kvstore.state_machine import StateMachine

log = logging.getLogger("ketch.kv.replica")

PINNED_PYSYNCOBJ = "0.3.17"
if PYSYNCOBJ_VERSION != PINNED_PYSYNCOBJ:  # the patches below know this version's internals
    raise ImportError(f"Ketch needs pysyncobj {PINNED_PYSYNCOBJ}, found {PYSYNCOBJ_VERSION}")

BATCH_VERSION = 1
MAX_BATCH_BYTES = 4 * MAX_REQUEST_BYTES
LEASE_CHECK_S = 0.25
# FAIL_REASONs that prove the command was never appended; every other failure is ambiguous.
_NOT_APPLIED = {FAIL_REASON.QUEUE_FULL, FAIL_REASON.REQUEST_DENIED, FAIL_REASON.MISSING_LEADER}


def _create_journal(journalFile: str | None = None) -> DurableJournal:  # noqa: N803
    if journalFile is None:
        raise ValueError("a Ketch member always keeps its Raft log on disk")
    return DurableJournal(journalFile)


# The one place pysyncobj is patched: its journal factory (see kvstore.journal for why).
_syncobj_module.createJournal = _create_journal

Done = Callable[[Any], None]  # receives a list of results, or a KVError for the whole batch


@dataclass(frozen=True)
class RaftTiming:
    election_min_s: float = 0.4
    election_max_s: float = 1.4
    # A leader that hears from no quorum for this long steps down. pysyncobj's default (30 s)
    # leaves two members believing they lead for 30 s; reads are safe anyway (barrier), but a
    # stuck leader would make every client wait.
    leader_fallback_s: float = 2.0
    connection_timeout_s: float = 2.0
    tick_s: float = 0.05


def unavailable(message: str, ambiguous: bool) -> KVError:
    return KVError(ErrorCode.UNAVAILABLE, message, ambiguous=ambiguous)


class Replica(SyncObj):
    def __init__(self, self_address: str, peers: list[str], data_dir: Path, password: str | None,
                 timing: RaftTiming = RaftTiming(),
                 on_applied: Callable[[int], None] | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.timing = timing
        self.machine = StateMachine()
        self.state_lock = threading.Lock()
        self._on_applied = on_applied or (lambda revision: None)
        self._pending_lock = threading.Lock()
        self._pending_writes: list[tuple[dict, Done]] = []
        self._pending_reads: list[tuple[list[dict], Done]] = []
        self._lease_proposal_due = 0.0
        self._stopping = threading.Event()
        conf = SyncObjConf(
            password=password,
            # bind the peer port to this member's own address: pysyncobj's default is 0.0.0.0, which
            # collides between members on one machine and would expose a loopback-only (unencrypted)
            # member's pickled frames on every interface
            bindAddress=self_address,
            journalFile=str(data_dir / "raft.journal"),
            fullDumpFile=str(data_dir / "raft.snapshot"),
            serializer=self._write_snapshot,
            deserializer=self._read_snapshot,
            appendEntriesUseBatch=False,
            raftMinTimeout=timing.election_min_s,
            raftMaxTimeout=timing.election_max_s,
            leaderFallbackTimeout=timing.leader_fallback_s,
            connectionTimeout=timing.connection_timeout_s,
            connectionRetryTime=0.5,
            commandsWaitLeader=False,
            dynamicMembershipChange=True,
            autoTick=False,
            onStateChanged=self._on_state_changed,
            logCompactionMinEntries=20_000,
            logCompactionMinTime=300,
        )
        super().__init__(self_address, peers, conf)
        self.journal: DurableJournal = self._SyncObj__raftLog
        transport = self._SyncObj__transport
        self._unsynced_send = transport.send
        self._outbox: list[tuple[Any, dict]] = []
        transport.send = self._queue_send
        unflushed_poll = self._poller.poll

        def poll_after_flush(timeout: float) -> Any:
            self._flush()  # never block with messages (or unsynced entries) waiting
            return unflushed_poll(timeout)

        self._poller.poll = poll_after_flush
        self._notifier = PipeNotifier(self._poller)
        self._thread = threading.Thread(target=self._run, name="raft", daemon=True)
        self._thread.start()

    # --- the one replicated method ----------------------------------------------------------

    @replicated
    def apply_batch(self, frame: bytes) -> list[dict | KVError]:
        try:
            version, commands = decode(frame)
            if version != BATCH_VERSION:
                raise KVError(ErrorCode.INVALID_ARGUMENT, f"unknown batch version {version}")
        except (KVError, TypeError, ValueError) as err:
            error = err if isinstance(err, KVError) else KVError(ErrorCode.INVALID_ARGUMENT, str(err))
            return [error]
        with self.state_lock:
            results = [self.machine.apply_safely(command) for command in commands]
            revision = self.machine.revision
        if commands:
            self._on_applied(revision)
        return results

    # --- what the server calls (any thread) -------------------------------------------------

    def submit_write(self, command: dict, done: Done) -> None:
        with self._pending_lock:
            self._pending_writes.append((command, done))
        self._notifier.notify()

    def submit_reads(self, commands: list[dict], done: Done) -> None:
        """Run read commands once a barrier committed after this call has been applied."""
        with self._pending_lock:
            self._pending_reads.append((commands, done))
        self._notifier.notify()

    def read_local(self, commands: list[dict]) -> list[dict]:
        """Serializable reads: this member's state as it is, possibly stale."""
        with self.state_lock:
            return [self.machine.apply_safely(command) for command in commands]

    def watch_events(self, start_revision: int, key: bytes, range_end: bytes | None,
                     prev_kv: bool) -> tuple[list[dict], int]:
        """Events from start_revision on, and the revision they were read at (one lock)."""
        with self.state_lock:
            return (self.machine.watch_events(start_revision, key, range_end, prev_kv),
                    self.machine.revision)

    @property
    def revision(self) -> int:
        return self.machine.revision

    def leader(self) -> str | None:
        leader = self._getLeader()
        return None if leader is None else str(leader.address if hasattr(leader, "address") else leader)

    def is_leader(self) -> bool:
        return self._isLeader()

    def raft_status(self) -> dict[str, Any]:
        status = self.getStatus()
        return {
            "leader": self.leader(),
            "is_leader": self.is_leader(),
            "raft_term": status["raft_term"],
            "raft_index": status["commit_idx"],
            "raft_applied_index": status["last_applied"],
            "has_quorum": status["has_quorum"],
            "journal_syncs": self.journal.syncs,
        }

    def members(self) -> list[str]:
        status = self.getStatus()
        nodes = [status["self"]] + [k[len("partner_node_status_server_"):] for k in status
                                    if k.startswith("partner_node_status_server_")]
        return sorted(str(node) for node in nodes)

    def close(self) -> None:
        self._stopping.set()
        self._notifier.notify()
        self._thread.join(timeout=5)
        self.destroy()
        self.journal._destroy()

    # --- the Raft thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._propose_pending()
                self._propose_lease_work()
                self.doTick(self.timing.tick_s)
                self._flush()
            except Exception:  # a bug must not silently stop replication: log it and go on
                log.exception("event=raft_loop_error")
                time.sleep(self.timing.tick_s)

    def _queue_send(self, node, message) -> bool:
        self._outbox.append((node, message))
        return True

    def _flush(self) -> None:
        """etcd's Ready loop: persist what was appended, then send what was queued. One sync
        covers every entry and acknowledgement of a loop turn (not one sync per message).

        A leader's AppendEntries go out before the sync: the leader may write its own log in
        parallel with replicating it (Raft dissertation §10.2.1), because it counts itself
        toward a commit only after its own sync (`_onTick`), so the commit index it announces
        is durable on a quorum either way. Acknowledgements, votes and all else wait for it."""
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, []
        rest = []
        for node, message in outbox:
            if message.get("type") == "append_entries":
                self._unsynced_send(node, message)
            else:
                rest.append((node, message))
        self.journal.sync()
        for node, message in rest:
            self._unsynced_send(node, message)

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 (pysyncobj's hook)
        # The leader counts its own log toward a commit at the start of a tick: sync it first.
        self.journal.sync()
        super()._onTick(timeToWait)

    def _SyncObj__onMessageReceived(self, node, message):  # noqa: N802 (overrides the private handler)
        keep = None
        if isinstance(message, dict) and message.get("type") == "next_node_idx" \
                and message.get("success") and not message.get("reset"):
            keep = self._SyncObj__raftNextIndex.get(node)
        super()._SyncObj__onMessageReceived(node, message)
        next_index = self._SyncObj__raftNextIndex
        if keep is not None and node in next_index and next_index[node] < keep:
            next_index[node] = keep  # never move back for a success: later entries are in flight

    def _propose_pending(self) -> None:
        with self._pending_lock:
            writes, self._pending_writes = self._pending_writes, []
            reads, self._pending_reads = self._pending_reads, []
        start = 0
        while start < len(writes):  # as few batches as MAX_BATCH_BYTES allows
            end, size = start, 0
            while end < len(writes) and (end == start or size + _size_hint(writes[end][0]) <= MAX_BATCH_BYTES):
                size += _size_hint(writes[end][0])
                end += 1
            batch = writes[start:end]
            self._propose([command for command, _ in batch], _fan_out([done for _, done in batch]))
            start = end
        if reads:
            self._propose([], self._run_reads_after_barrier(reads))

    def _propose(self, commands: list[dict], done: Done) -> None:
        frame = encode([BATCH_VERSION, commands])

        def on_result(results, error):
            if error == FAIL_REASON.SUCCESS:
                done(results)
            else:
                ambiguous = error not in _NOT_APPLIED
                done(unavailable(f"raft: {_fail_name(error)}", ambiguous))

        self.apply_batch(frame, callback=on_result)

    def _run_reads_after_barrier(self, reads: list[tuple[list[dict], Done]]) -> Done:
        def after_barrier(results_or_error):
            for batch, done in reads:
                if isinstance(results_or_error, KVError):
                    # A failed barrier read nothing: reads are never ambiguous.
                    done(unavailable(results_or_error.message, ambiguous=False))
                else:
                    done(self.read_local(batch))
        return after_barrier

    def _on_state_changed(self, old_state: int, new_state: int) -> None:
        if new_state == 2:  # became leader: rebase lease deadlines on this member's clock
            self._propose([commands.lease_promote(time.time(), self.timing.election_max_s)], lambda _: None)

    def _propose_lease_work(self) -> None:
        now = time.time()
        if now < self._lease_proposal_due or not self._isLeader():
            return
        self._lease_proposal_due = now + LEASE_CHECK_S
        with self.state_lock:
            due = self.machine.leases.expired(now)
        if due:
            self._propose([commands.lease_expire(now)], lambda _: None)

    # --- snapshots through pysyncobj's serializer hooks ------------------------------------

    def _write_snapshot(self, path: str, raft_data: Any) -> None:
        """Called on the Raft thread; raft_data is (last entry, entry before it, cluster)."""
        last, before, cluster = raft_data
        with self.state_lock:
            state = snapshot.dump(self.machine)
        nodes = [str(node.address if hasattr(node, "address") else node) for node in cluster]
        write_durably(Path(path), encode({"raft": [list(last), list(before), nodes], "state": state}))

    def _read_snapshot(self, path: str) -> tuple:
        fsync_dir(Path(path).parent)  # the rename that published it is durable from here on
        doc = decode(Path(path).read_bytes())
        last, before, nodes = doc["raft"]
        with self.state_lock:
            self.machine = snapshot.load(doc["state"])
        # Node objects, not strings: pysyncobj compares them with its own selfNode.
        return tuple(last), tuple(before), [TCPNode(address) for address in nodes]


def _size_hint(command: dict) -> int:
    return len(command.get("value", b"")) + len(command.get("key", b"")) + 64


def _fan_out(dones: list[Done]) -> Done:
    def deliver(results_or_error):
        for i, done in enumerate(dones):
            done(results_or_error if isinstance(results_or_error, KVError) else results_or_error[i])
    return deliver


def _fail_name(code: int) -> str:
    for name in dir(FAIL_REASON):
        if not name.startswith("_") and getattr(FAIL_REASON, name) == code:
            return name
    return str(code)
