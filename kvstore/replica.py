"""A kv member's Raft replica: the pure StateMachine replicated with pysyncobj (pinned 0.3.17).

Theory of operation:
- One replicated entry point, `apply_batch(frame)`, where frame is msgpack [BATCH_VERSION,
  [command, ...]]. pysyncobj numbers replicated methods by sorted name, so a second method
  would silently change what old log entries mean: there is only ever this one.
- Group commit: every write submitted during a loop turn goes into one batch, proposed at the
  start of the next turn. A follower's batch goes to the leader as one `apply_command` over
  the one peer connection pysyncobj keeps to it.
- Linearizable reads: ReadIndex (kvstore.replica_reads): no log entry per read.
- Elections: pre-vote and the leader-lease rule for votes (kvstore.replica_elections), so a
  member that cannot hear the leader cannot depose it; timings for a lab on one switch.
- Peers talk msgpack frames authenticated with HMAC-SHA256 (kvstore.peer_transport), not
  pickle; Ketch's own messages (pre_vote, read_index and their answers) ride beside pysyncobj's.
- A leader's commit-index notices (empty AppendEntries) wait up to 2 ms for the next entries
  to carry them (kvstore.commit_notices): half the messages of a sequential writer.
- Durability: the log is `kvstore.journal.DurableJournal`. Messages pysyncobj sends are queued;
  before the loop waits the journal is synced (fdatasync) and only then is the queue sent
  (etcd's Ready loop: persist, then send). The leader also syncs before it counts its own log
  toward a commit. So an entry is acknowledged only once a quorum has it on disk, with one
  sync per loop turn rather than one per message.
- pysyncobj 0.3.17's leader moves a follower's nextIndex back on success replies; here it
  never moves back for a success (`_keep_next_index`).
- Time: the leader proposes `lease_expire(now)` when a lease is due and `lease_promote(now,
  election_max_s)` when it becomes leader, with its wall clock; the state machine never reads one.
- Snapshots are the core's msgpack snapshot, written through pysyncobj's serializer hooks and
  fsync'd; never a pickle of our objects.
- Every write and linearizable read is stamped hop by hop (kvstore.timeline).

Threads: a member runs the Raft loop in its trio thread (`await replica.run()`), so a request
reaches the log and its answer reaches the client with no thread hand-off; tests and tools may
let it run on a thread of its own instead. Everything that touches the state machine runs on
the Raft loop or holds `state_lock`. Results reach waiters through `deliver`, once per loop
turn, on the Raft loop; callbacks must not block.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import trio
from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj import syncobj as _syncobj_module
from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.node import TCPNode
from pysyncobj.pipe_notifier import PipeNotifier
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

from kvstore import snapshot
from kvstore.codec import decode, encode
from kvstore.commit_notices import HeldNotices
from kvstore.errors import ErrorCode, KVError
from kvstore.journal import DurableJournal, fsync_dir, write_durably
from kvstore.peer_transport import EpollPoller, PeerTransport
from kvstore.read_index import AppliedGate, FollowerRequests, LeaderRounds
from kvstore.replica_elections import PreVote
from kvstore.replica_reads import READ_TIMEOUT_S, LinearizableReads, ReadWaiter
from kvstore.replica_writes import BATCH_VERSION, MAX_BATCH_BYTES, Done, GroupCommit
from kvstore.state_machine import StateMachine
from kvstore.timeline import EntryStamps, quorum_index

log = logging.getLogger("ketch.kv.replica")

PINNED_PYSYNCOBJ = "0.3.17"
if PYSYNCOBJ_VERSION != PINNED_PYSYNCOBJ:  # the patches below know this version's internals
    raise ImportError(f"Ketch needs pysyncobj {PINNED_PYSYNCOBJ}, found {PYSYNCOBJ_VERSION}")



def _create_journal(journalFile: str | None = None) -> DurableJournal:  # noqa: N803
    if journalFile is None:
        raise ValueError("a Ketch member always keeps its Raft log on disk")
    return DurableJournal(journalFile)


# The one place pysyncobj is patched: its journal factory (see kvstore.journal for why) and its
# poller factory (epoll, so that a trio loop can wait on it).
_syncobj_module.createJournal = _create_journal
_syncobj_module.createPoller = lambda pollerType: EpollPoller()  # noqa: N803

# Hands a loop turn's (done, value) pairs to whoever waits, in one call (one thread hand-off).
Deliver = Callable[[list[tuple[Done, Any]]], None]


@dataclass(frozen=True)
class RaftTiming:
    """Timings for members on one switch (a lab), where a round trip is well under a
    millisecond; etcd's defaults (100 ms heartbeat, 1 s election) allow for WAN links."""
    heartbeat_s: float = 0.05
    # Well above the pauses a member on a busy 2-core machine sees (a long GC, a fork for a
    # snapshot): 0.3-0.6 s gave spurious elections under the benchmark's load. A killed
    # leader is replaced sooner anyway (its connections close: `_SyncObj__onNodeDisconnected`).
    election_min_s: float = 0.5
    election_max_s: float = 1.0
    # A leader that hears from no quorum for this long steps down. pysyncobj's default (30 s)
    # leaves two members believing they lead for 30 s; reads are safe anyway (ReadIndex), but
    # a stuck leader would make every client wait.
    leader_fallback_s: float = 1.5
    connection_timeout_s: float = 1.0  # a peer connection silent this long is closed
    reconnect_s: float = 0.2
    tick_s: float = 0.05


# After the leader's connection closes, ask for votes within this long (random, so that two
# followers seldom ask at once and split the vote).
LEADER_LOST_ELECTION_JITTER_S = 0.1
# A leader holds an empty AppendEntries (a new commit index, a heartbeat) this long, in case the
# next AppendEntries to that follower overtakes it (kvstore.commit_notices).
COMMIT_NOTICE_HOLD_S = 0.002


def _nothing_else_runnable() -> bool:
    return trio.lowlevel.current_statistics().tasks_runnable == 0


class _Wake:
    """Stands in for pysyncobj's own pipe notifier, which writes to a pipe on every command
    it queues (even from its own loop, where the command is taken in the same tick, and the
    pipe's byte then cost a poll event and a wasted turn)."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def notify(self) -> None:
        if not self._replica._proposing:
            self._replica._wake()


def _call_each(deliveries: list[tuple[Done, Any]]) -> None:
    for done, value in deliveries:
        done(value)


class Replica(GroupCommit, LinearizableReads, PreVote, SyncObj):
    def __init__(self, self_address: str, peers: list[str], data_dir: Path, peer_secret: str,
                 timing: RaftTiming = RaftTiming(),
                 on_applied: Callable[[int], None] | None = None,
                 deliver: Deliver | None = None,
                 on_leader_change: Callable[[], None] | None = None,
                 raft_thread: bool = True) -> None:
        """With raft_thread, Raft runs on a thread of its own from here on (tests, tools);
        without, the caller runs `await replica.run()` in its trio loop (a member)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.timing = timing
        self.machine = StateMachine()
        self.state_lock = threading.Lock()
        self._on_applied = on_applied or (lambda revision: None)
        self._deliver = deliver or _call_each
        self._on_leader_change = on_leader_change or (lambda: None)
        self._pending_lock = threading.Lock()
        self._pending_writes: list[tuple[dict, Done, dict]] = []
        self._pending_reads: list[ReadWaiter] = []
        self._kicked = False  # the Raft loop was woken for what is pending (one wake per turn)
        self._events_handled = 0  # by the last poll: their effects (a commit, a command) need a turn
        # Raft-thread state below: touched only by the Raft thread.
        self._deliveries: list[tuple[Done, Any]] = []
        self._sync_inline: Callable[[], bool] = lambda: False  # Replica.run: when trio has nothing else to run
        self._held: deque[tuple[int, list]] = deque()  # (log index, acknowledgements) waiting for the disk
        self._applied_revision: int | None = None
        self._apply_stamps: dict[str, float] = {}
        self.stamps = EntryStamps()
        self._rounds = LeaderRounds()
        self._rounds_term = -1  # rounds prove leadership only in the term they started in
        self._remote_reads: list[tuple[Any, int]] = []  # (follower, request id) asking us as leader
        self._forwarded = FollowerRequests()
        self._gate = AppliedGate()
        self._echo_round: int | None = None  # the round tag of the AppendEntries being answered
        self._last_leader_contact_s = 0.0
        self._pre_vote: dict | None = None  # {"term", "granted", "passed"} while one is open
        self._held_deadline: float | None = None  # the election deadline while a tick hides it from pysyncobj
        self._pre_votes_given: tuple[int, set] = (0, set())  # (term, members whose pre-vote we granted)
        self._transfer_election = False
        self._known_leader: Any = None
        self._lease_proposal_due = 0.0
        self._stopping = threading.Event()
        conf = SyncObjConf(
            password=None,  # pysyncobj's Fernet: our transport authenticates frames instead
            # bind the peer port to this member's own address: pysyncobj's default is 0.0.0.0, which
            # collides between members on one machine and would expose a loopback-only (unencrypted)
            # member's pickled frames on every interface
            bindAddress=self_address,
            journalFile=str(data_dir / "raft.journal"),
            fullDumpFile=str(data_dir / "raft.snapshot"),
            serializer=self._write_snapshot,
            deserializer=self._read_snapshot,
            appendEntriesUseBatch=False,
            appendEntriesPeriod=timing.heartbeat_s,
            # Larger than any entry, so pysyncobj never splits one into pickled 'transmission' chunks.
            appendEntriesBatchSizeBytes=2 * MAX_BATCH_BYTES,
            raftMinTimeout=timing.election_min_s,
            raftMaxTimeout=timing.election_max_s,
            leaderFallbackTimeout=timing.leader_fallback_s,
            connectionTimeout=timing.connection_timeout_s,
            connectionRetryTime=timing.reconnect_s,
            commandsWaitLeader=False,
            dynamicMembershipChange=True,
            autoTick=False,
            onStateChanged=self._on_state_changed,
            logCompactionMinEntries=20_000,
            logCompactionMinTime=300,
        )
        super().__init__(self_address, peers, conf,
                         transportClass=functools.partial(PeerTransport, secret=peer_secret))
        self.journal: DurableJournal = self._SyncObj__raftLog
        self._stamp_appends()
        self._transport = transport = self._SyncObj__transport
        self._unsynced_send = transport.send
        self._outbox: list[tuple[Any, dict]] = []
        self._notices = HeldNotices(COMMIT_NOTICE_HOLD_S)
        transport.send = self._queue_send
        self._unflushed_poll = unflushed_poll = self._poller.poll

        def poll_after_flush(timeout: float) -> Any:
            if timeout > 0:  # never block with results, messages or unsynced entries waiting
                self._end_of_turn()  # (Replica.run polls without waiting and ends each turn itself)
            self._events_handled = unflushed_poll(timeout)
            return self._events_handled

        self._poller.poll = poll_after_flush
        self._notifier = PipeNotifier(self._poller)
        self.journal.on_synced = self._notifier.notify  # wake the loop to send what waited for it
        self._loop_thread: int | None = None  # the thread the Raft loop runs on, once it runs
        self._waiting: trio.CancelScope | None = None  # Replica.run's wait for messages
        self._turn_again = False  # work arrived from the loop's own thread during this turn
        self._proposing = False  # the turn is proposing, before the tick that takes the commands
        self._SyncObj__pipeNotifier = _Wake(self)  # pysyncobj's own wake-up on a new command
        self._thread: threading.Thread | None = None
        if raft_thread:
            self._thread = threading.Thread(target=self._run_thread, name="raft", daemon=True)
            self._thread.start()

    # --- the one replicated method ----------------------------------------------------------

    @replicated
    def apply_batch(self, frame: bytes) -> list[dict | KVError]:
        # pysyncobj applies entry raftLastApplied + 1 and counts it only afterwards
        self._apply_stamps = self.stamps.take(self.raftLastApplied + 1)
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
        self._apply_stamps["applied"] = time.perf_counter()
        if commands:
            self._applied_revision = revision
        return results

    # --- what the server calls (any thread) -------------------------------------------------

    def submit_write(self, command: dict, done: Done, stamps: dict | None = None) -> None:
        """Propose a write; `done` gets its result (or a KVError) through `deliver`. `stamps`
        gets the write's timeline (kvstore.timeline) filled in before `done` is called."""
        with self._pending_lock:
            self._pending_writes.append((command, done, stamps if stamps is not None else {}))
            self._kick()

    def submit_reads(self, commands: list[dict], done: Done, stamps: dict | None = None) -> None:
        """Run read commands linearizably (ReadIndex): `done` gets their results, or a KVError
        that never means "maybe": a read that fails read nothing."""
        with self._pending_lock:
            self._pending_reads.append(ReadWaiter(commands, done, stamps if stamps is not None else {}))
            self._kick()

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
        if self._thread is not None:
            self._notifier.notify()
            self._thread.join(timeout=5)
        self.destroy()
        self.journal._destroy()

    # --- the Raft loop ------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Raft in the caller's trio thread: no thread hand-off between a request and the log.
        The loop waits on pysyncobj's epoll descriptor (peer sockets and the wake-up pipe)."""
        task_status.started()
        self._sync_inline = _nothing_else_runnable
        self._loop_thread = threading.get_ident()
        ready = self._poller.fileno()
        while not self._stopping.is_set():
            self._turn_again = False
            self._turn(0)
            if self._answer_ready() and not self._outbox_carries_entries():
                # Results went to their tasks and all that waits to be sent is bookkeeping (the new
                # commit index): let the answers go first (a sequential client's put waited
                # 0.17 ms here); new entries are never held back this way. Twice: trio runs a
                # batch of runnable tasks in random order, so after one yield the answers' tasks
                # run after this one half the time; after two they have all run.
                await trio.lowlevel.checkpoint()
                await trio.lowlevel.checkpoint()
            self._end_of_turn()  # what this turn produced goes out before we wait
            if self._events_handled or self._turn_again:
                # Messages were handled at the end of the turn (pysyncobj polls last), or a task
                # submitted work during it: what they brought (a commit index, a forwarded
                # command, a write) is acted on in the next turn.
                await trio.lowlevel.checkpoint()
                continue
            with trio.move_on_after(self._wait_s()) as self._waiting:
                await trio.lowlevel.wait_readable(ready)
                self._take_messages()
            self._waiting = None

    def _run_thread(self) -> None:
        self._loop_thread = threading.get_ident()
        while not self._stopping.is_set():
            again, self._turn_again = self._turn_again, False
            wait_s = 0 if again else self._wait_s()
            self._turn(wait_s)
            if not wait_s:
                self._end_of_turn()  # (pysyncobj's poll ends the turn only before it waits)

    def _take_messages(self) -> None:
        """Woken by a message: handle it before the tick, so that the tick acts on it (a leader
        commits and answers on the acknowledgement, not one turn later), and let what it
        produced (a follower's acknowledgement) go out at once."""
        try:
            self._unflushed_poll(0)
            if self._outbox:
                self._end_of_turn()
        except Exception:  # as in _turn: log it and go on
            log.exception("event=raft_loop_error")

    def _turn(self, wait_s: float) -> None:
        try:
            self._proposing = True  # pysyncobj takes these commands in this turn's tick
            self._propose_pending()
            self._propose_lease_work()
            self._proposing = False
            self._tick_electing_after_pre_vote(wait_s)
            self._after_tick()
        except Exception:  # a bug must not silently stop replication: log it and go on
            self._proposing = False
            log.exception("event=raft_loop_error")
            time.sleep(self.timing.tick_s)

    def _wait_s(self) -> float:
        """How long the loop may wait for a message: a tick, or less if a follower's election
        deadline comes sooner. Followers that lose the leader together draw random deadlines
        (`LEADER_LOST_ELECTION_JITTER_S`) so that one asks first; woken only at the next tick,
        they all asked at once and could split the vote."""
        if self._isLeader():
            due = self._notices.next_due()
            return self.timing.tick_s if due is None else min(self.timing.tick_s, max(0.0, due - time.monotonic()))
        until_election = self._SyncObj__raftElectionDeadline - raft_clock()
        return min(self.timing.tick_s, max(0.0, until_election))

    def _kick(self) -> None:
        """Wake the Raft loop for pending work (called with _pending_lock held), once per turn."""
        if not self._kicked:
            self._kicked = True
            self._wake()

    def _wake(self) -> None:
        """Make the Raft loop take another turn now. From its own thread (a member's gateway
        and server tasks share the trio thread with it) by ending its wait, with no system
        call; from any other thread through the pipe it waits on."""
        if threading.get_ident() != self._loop_thread:
            self._notifier.notify()
            return
        self._turn_again = True
        if self._waiting is not None:
            self._waiting.cancel()

    def _end_of_turn(self) -> None:
        """Before the loop waits: answer what is ready, then persist and send (etcd's Ready
        loop): start one sync for every entry of the turn (on the journal's sync thread, so the
        loop goes on serving clients meanwhile). A follower's answers to AppendEntries (which
        acknowledge entries) leave, in order, only once the log is durable up to where it was
        when they were queued; other messages do not depend on the log's durability (a vote
        depends on the term and vote, saved synchronously) and leave at once, in order.

        A leader's AppendEntries go out at once: the leader may write its own log in parallel
        with replicating it (Raft dissertation §10.2.1), because it counts itself toward a
        commit only up to its durable index (`_onTick`), so the commit index it announces is
        durable on a quorum either way. Empty ones (a commit index, a heartbeat) are held for
        COMMIT_NOTICE_HOLD_S unless a ReadIndex round is open (kvstore.commit_notices)."""
        self._answer_ready()
        now = time.monotonic()
        if self._outbox:
            outbox, self._outbox = self._outbox, []
            acks = []
            may_hold = self._isLeader() and not len(self._rounds)
            with self._transport.corked():
                for node, message in outbox:
                    kind = message.get("type")
                    if kind == "next_node_idx":
                        acks.append((node, message))
                        continue
                    if kind == "append_entries":
                        commit_index = message.get("commit_index", 0)
                        if may_hold and message.get("entries") == [] and self._notices.may_hold(node, commit_index):
                            self._notices.hold(node, message, now)  # kvstore.commit_notices
                            continue
                        self._notices.overtaken(node)
                        self._notices.sent(node, commit_index)
                    else:
                        notice = self._notices.take(node)  # messages to a follower stay in order
                        if notice is not None:
                            self._send_notice(node, notice)
                    self._unsynced_send(node, message)
            if acks:
                self._held.append((self.journal.last_index, acks))
        if self._notices:
            if not self._isLeader():
                self._notices.clear()
            with self._transport.corked():
                for node, message in self._notices.due(now):
                    self._send_notice(node, message)
        if self._sync_inline():
            self.journal.sync()  # nothing else is waiting to run: a thread hand-off would only add latency
        else:
            self.journal.begin_sync()
        self._release_held()

    def _send_notice(self, node, message: dict) -> None:
        """Send a commit notice that was held (kvstore.commit_notices)."""
        self._notices.sent(node, message.get("commit_index", 0))
        self._unsynced_send(node, message)

    def _answer_ready(self) -> bool:
        """Release the reads that may go, announce the applied revision, deliver the results of
        applied writes; True if any write result was delivered."""
        self.stamps.quorum(self.raftCommitIndex, time.perf_counter())
        self._release_reads()
        if self._applied_revision is not None:
            revision, self._applied_revision = self._applied_revision, None
            self._on_applied(revision)
        if not self._deliveries:
            return False
        deliveries, self._deliveries = self._deliveries, []
        self._deliver(deliveries)
        return True

    def _outbox_carries_entries(self) -> bool:
        return any(message.get("entries") for _, message in self._outbox)

    def _release_held(self) -> None:
        durable = self.journal.durable_index
        self.stamps.synced(durable, time.perf_counter())
        if not self._held or self._held[0][0] > durable:
            return
        with self._transport.corked():
            while self._held and self._held[0][0] <= durable:
                for node, message in self._held.popleft()[1]:
                    self._unsynced_send(node, message)

    def _sync_journal(self) -> None:
        self.journal.sync()
        self._release_held()

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 (pysyncobj's hook)
        # pysyncobj's leader counts its own log toward a commit here, whole. If a quorum of
        # followers has acknowledged entries past what is durable on the leader, wait for its
        # sync first (rare: its sync began when the entries were sent, theirs after receipt).
        if self._isLeader() and self._followers_quorum_index() > self.journal.durable_index:
            self._sync_journal()
        super()._onTick(timeToWait)

    def _followers_quorum_index(self) -> int:
        """The highest index that enough followers have for a majority with the leader."""
        others = self.otherNodes
        if not others:
            return self.journal.last_index
        match = self._SyncObj__raftMatchIndex
        needed = (len(others) + 1) // 2  # followers needed beside the leader
        return sorted((match.get(node, 0) for node in others), reverse=True)[needed - 1]

    def _after_tick(self) -> None:
        now = time.monotonic()
        leader = self._getLeader()
        if leader != self._known_leader:
            self._known_leader = leader
            self._notices.clear()
            log.info("event=leader_changed leader=%s term=%s", leader, self.raftCurrentTerm)
            self._on_leader_change()
        leading = self._isLeader()
        if len(self._rounds) and (not leading or self.raftCurrentTerm != self._rounds_term):
            for round_ in self._rounds.drop_all():
                self._fail_reads(round_.waiters, "this member stopped leading")
        for round_ in self._rounds.expired(now, READ_TIMEOUT_S):
            self._fail_reads(round_.waiters, "leadership was not confirmed in time")
        for request in self._forwarded.orphaned(None if leading else leader, now, READ_TIMEOUT_S):
            self._fail_reads(request.waiters, "the leader did not give a read index")
        if self._pre_vote is not None and (leading or self.raftCurrentTerm >= self._pre_vote["term"]):
            self._pre_vote = None  # the election it asked about happened, or was overtaken
        self._transfer_election = False

    # --- the Raft thread: sending and receiving ---------------------------------------------

    def _queue_send(self, node, message) -> bool:
        kind = message.get("type")
        if kind == "append_entries":
            message["round"] = self._rounds.last_number  # ReadIndex: answers prove leadership since
        elif kind == "next_node_idx" and self._echo_round is not None:
            message["round"] = self._echo_round
        elif kind == "request_vote" and self._transfer_election:
            message["transfer"] = True
        elif kind == "apply_command_response" and isinstance(message.get("log_idx"), int):
            self._notices.awaits(node, message["log_idx"])  # its commit notice is not held
        self._outbox.append((node, message))
        return True

    def _send(self, node, message: dict) -> None:
        self._queue_send(node, message)

    def _SyncObj__onMessageReceived(self, node, message):  # noqa: N802 (overrides the private handler)
        if not isinstance(message, dict) or "transmission" in message:
            return  # never sent by a Ketch member; pysyncobj would unpickle a transmission
        kind = message.get("type")
        handler = self._handlers.get(kind)
        if handler is not None:
            return handler(self, node, message)
        if kind == "request_vote" and not message.get("transfer") and self._hears_leader():
            return  # §4.2.3: a current leader is alive; neither the term nor the vote changes
        keep = None
        if kind == "next_node_idx" and message.get("success") and not message.get("reset"):
            keep = self._SyncObj__raftNextIndex.get(node)
        if kind == "append_entries":
            self._echo_round = message.get("round")
        try:
            super()._SyncObj__onMessageReceived(node, message)
        finally:
            self._echo_round = None
        now = time.perf_counter()
        if kind == "append_entries" and message.get("term") == self.raftCurrentTerm:
            self._heard_leader()
            self.stamps.quorum(self.raftCommitIndex, now)
        elif kind == "next_node_idx" and self._isLeader():
            self._keep_next_index(node, keep)
            if isinstance(message.get("round"), int):
                self._rounds.acked(node, message["round"])
                self._confirm_rounds()
            match = self._SyncObj__raftMatchIndex
            self.stamps.quorum(quorum_index([self.journal.durable_index] + [match.get(n, 0) for n in self.otherNodes]),
                               now)

    def _keep_next_index(self, node, before: int | None) -> None:
        """pysyncobj 0.3.17's leader moves a follower's nextIndex back to ack+1 on every success
        reply, even while later entries are in flight; the resend makes the follower cut
        entries it had acknowledged (Raft §5.3 allows deleting only conflicting ones). A
        success reply never moves it back here (pipelined Raft); a follower that really lacks
        entries answers with reset=True and the leader backs up as before."""
        next_index = self._SyncObj__raftNextIndex
        if before is not None and node in next_index and next_index[node] < before:
            next_index[node] = before

    def _SyncObj__onNodeDisconnected(self, node):  # noqa: N802 (overrides the private handler)
        super()._SyncObj__onNodeDisconnected(node)
        if node == self._getLeader() and not self._isLeader():
            # The leader's connection closed (a killed process closes them all): ask for votes
            # soon instead of after a whole election timeout. Pre-vote keeps this harmless if
            # the leader is in fact alive: the members that still hear it say no.
            soon = raft_clock() + random.uniform(0, LEADER_LOST_ELECTION_JITTER_S)
            self._SyncObj__raftElectionDeadline = min(self._election_deadline(), soon)

    _handlers = {  # Ketch's own peer messages, beside pysyncobj's
        "read_index": LinearizableReads._on_read_index,
        "read_index_resp": LinearizableReads._on_read_index_resp,
        "pre_vote": PreVote._on_pre_vote,
        "pre_vote_resp": PreVote._on_pre_vote_resp,
    }

    # --- the log, stamped for the write timeline -------------------------------------------------

    def _stamp_appends(self) -> None:
        add = self.journal.add

        def add_stamped(command: bytes, idx: int, term: int) -> None:
            add(command, idx, term)
            self.stamps.appended(idx, time.perf_counter())

        self.journal.add = add_stamped

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
