"""The members' peer transport for pysyncobj: msgpack frames authenticated with HMAC-SHA256.

Why our own: pysyncobj 0.3.17's TCP connection pickles every message, zlib-compresses it and,
with a password, wraps it in a Fernet token (AES-CBC + HMAC + base64), and the receiver
unpickles whatever decrypts. That is most of a member's CPU per replicated message, and an
unauthenticated pickle is code execution for anyone who reaches the port. pysyncobj accepts a
`transportClass`; this one keeps its connection logic (who connects to whom, node
identification, reconnects) and replaces the connection and the listening socket.

Wire, per TCP connection:
- hello: b"KETCHP1\\n" + a 16-byte random nonce, sent by each side as soon as it is connected;
- then frames: u32 big-endian length of the rest, a 32-byte tag, a msgpack body, where
  tag = HMAC-SHA256(key, receiver's nonce || u64 frame number in this direction || body) and
  key = HMAC-SHA256(peer secret, "ketch peer frames v1").
A frame with a wrong tag (no secret, replayed from another connection, reordered, altered) or a
length over MAX_FRAME_BYTES ends the connection before its body is decoded, and is logged.
The body is msgpack: nothing a peer sends is unpickled here.

Liveness: a connection that has sent nothing for PING_INTERVAL_S sends an empty frame, and one
that has read nothing for `timeout_s` is closed. pysyncobj checks idleness only when it sends,
so an idle follower-to-follower connection used to be closed by the first RequestVote after a
leader died, losing the vote and a whole election round.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import select
import socket
import struct
from typing import Any, Callable

import msgpack
from pysyncobj.monotonic import monotonic
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.tcp_connection import CONNECTION_STATE
from pysyncobj.transport import TCPTransport

log = logging.getLogger("ketch.kv.peer")

HELLO_MAGIC = b"KETCHP1\n"
NONCE_BYTES = 16
HELLO_BYTES = len(HELLO_MAGIC) + NONCE_BYTES
TAG_BYTES = 32
MAX_FRAME_BYTES = 64 * 1024 * 1024  # a log batch is at most a few MiB; refuse anything far larger
PING_INTERVAL_S = 0.2
RECEIVE_BYTES = 256 * 1024
_LENGTH = struct.Struct(">I")
_SEQUENCE = struct.Struct(">Q")
_PING = msgpack.packb(None)


def frame_key(secret: str) -> bytes:
    return hmac.digest(secret.encode(), b"ketch peer frames v1", hashlib.sha256)


def frame_tag(key: bytes, receiver_nonce: bytes, sequence: int, body: bytes) -> bytes:
    return hmac.digest(key, receiver_nonce + _SEQUENCE.pack(sequence) + body, hashlib.sha256)


class PeerConnection:
    """pysyncobj's TcpConnection interface (state, callbacks, connect, send, disconnect) over
    the authenticated msgpack frames above."""

    def __init__(self, poller, key: bytes, timeout_s: float, sock: socket.socket | None = None) -> None:
        # Read by TCPTransport; they stay empty because pysyncobj's own encryption is off.
        self.encryptor = None
        self.sendRandKey = None
        self.recvRandKey = None
        self._poller = poller
        self._key = key
        self._timeout_s = timeout_s
        self._on_message: Callable[[Any], None] | None = None
        self._on_connected: Callable[[], None] | None = None
        self._on_disconnected: Callable[[], None] | None = None
        self._socket: socket.socket | None = None
        self._fileno: int | None = None
        self._state = CONNECTION_STATE.DISCONNECTED
        self._tcp_connecting = False  # an outgoing connect() has not completed yet
        self.corked = False  # while set, frames gather in the outbox; uncork() sends them at once
        self._reset()
        if sock is not None:  # accepted: the hello goes out at once
            self._socket = sock
            self._fileno = sock.fileno()
            self._start_handshake()

    def _reset(self) -> None:
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._nonce = os.urandom(NONCE_BYTES)  # the peer tags what it sends us with this
        self._peer_nonce: bytes | None = None
        self._sent = self._received = 0
        self._last_read = self._last_send = monotonic()

    # --- pysyncobj's interface ------------------------------------------------------------

    @property
    def state(self) -> int:
        return self._state

    def fileno(self) -> int | None:
        return self._fileno

    def getSendBufferSize(self) -> int:  # noqa: N802 (pysyncobj's name)
        return len(self._outbox)

    def setOnConnectedCallback(self, callback) -> None:  # noqa: N802
        self._on_connected = callback

    def setOnMessageReceivedCallback(self, callback) -> None:  # noqa: N802
        self._on_message = callback

    def setOnDisconnectedCallback(self, callback) -> None:  # noqa: N802
        self._on_disconnected = callback

    def connect(self, host: str, port: int) -> bool:
        self._close_socket()
        self._reset()
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._socket = socket.socket(family, socket.SOCK_STREAM)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket.setblocking(False)
            self._socket.connect_ex((host, port))
        except OSError:
            self._close_socket()
            return False
        self._fileno = self._socket.fileno()
        self._state = CONNECTION_STATE.CONNECTING
        self._tcp_connecting = True
        self._subscribe(write=True)
        return True

    def send(self, message: Any) -> None:
        if self._peer_nonce is None or self._socket is None:
            return  # not connected: pysyncobj treats the message as lost, as with TCP
        self._enqueue(msgpack.packb(message, use_bin_type=True))

    def disconnect(self) -> None:
        was_open = self._state != CONNECTION_STATE.DISCONNECTED
        self._tcp_connecting = False
        self._close_socket()
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._peer_nonce = None
        self._state = CONNECTION_STATE.DISCONNECTED
        if was_open and self._on_disconnected is not None:
            self._on_disconnected()

    # --- liveness (called every loop turn by the transport) --------------------------------

    def keep_alive(self, now: float) -> None:
        if self._state == CONNECTION_STATE.DISCONNECTED:
            return
        if now - self._last_read > self._timeout_s:
            log.info("event=peer_timeout silent_s=%.2f", now - self._last_read)
            self.disconnect()
        elif self._peer_nonce is not None and now - self._last_send > PING_INTERVAL_S:
            self._enqueue(_PING)

    # --- internals ---------------------------------------------------------------------------

    def _close_socket(self) -> None:
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _subscribe(self, write: bool) -> None:
        mask = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR | (POLL_EVENT_TYPE.WRITE if write else 0)
        self._poller.subscribe(self._fileno, self._on_event, mask)

    def _start_handshake(self) -> None:
        self._state = CONNECTION_STATE.CONNECTING
        self._last_read = monotonic()
        self._outbox += HELLO_MAGIC + self._nonce
        self._flush_outbox()

    def _enqueue(self, body: bytes) -> None:
        tag = frame_tag(self._key, self._peer_nonce, self._sent, body)
        self._sent += 1
        self._outbox += _LENGTH.pack(TAG_BYTES + len(body)) + tag + body
        self._last_send = monotonic()
        if not self.corked:
            self._flush_outbox()

    def uncork(self) -> None:
        self.corked = False
        if self._outbox:
            self._flush_outbox()

    def _flush_outbox(self) -> None:
        while self._outbox and self._socket is not None:
            try:
                sent = self._socket.send(self._outbox)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.disconnect()
                return
            del self._outbox[:sent]
        if self._socket is not None:
            self._subscribe(write=bool(self._outbox))

    def _on_event(self, descr: int, events: int) -> None:
        if descr != self._fileno:
            self._poller.unsubscribe(descr)
            return
        if self._tcp_connecting:  # an outgoing connect finished, or failed
            self._tcp_connecting = False
            if events & POLL_EVENT_TYPE.ERROR or self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.disconnect()
                return
            self._start_handshake()
            return
        if events & POLL_EVENT_TYPE.READ:
            self._receive()
            if self._state == CONNECTION_STATE.DISCONNECTED:
                return
        if events & POLL_EVENT_TYPE.ERROR:
            self.disconnect()
            return
        if events & POLL_EVENT_TYPE.WRITE:
            self._flush_outbox()

    def _receive(self) -> None:
        while self._socket is not None:
            try:
                data = self._socket.recv(RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.disconnect()
                return
            if not data:
                self.disconnect()
                return
            self._inbox += data
            if len(data) < RECEIVE_BYTES:
                break
        self._last_read = monotonic()
        self._parse()

    def _parse(self) -> None:
        inbox = self._inbox
        offset = 0
        if self._peer_nonce is None:
            if len(inbox) < HELLO_BYTES:
                return
            if inbox[:len(HELLO_MAGIC)] != HELLO_MAGIC:
                return self._refuse("not a Ketch peer (bad hello)")
            self._peer_nonce = bytes(inbox[len(HELLO_MAGIC):HELLO_BYTES])
            offset = HELLO_BYTES
            outgoing = self._state == CONNECTION_STATE.CONNECTING and self._on_connected is not None
            self._state = CONNECTION_STATE.CONNECTED
            if outgoing:
                self._on_connected()
                if self._state == CONNECTION_STATE.DISCONNECTED:
                    return
        view = memoryview(inbox)
        try:
            while len(inbox) - offset >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(inbox, offset)
                if length < TAG_BYTES or length > MAX_FRAME_BYTES:
                    return self._refuse(f"frame length {length} out of bounds")
                end = offset + _LENGTH.size + length
                if len(inbox) < end:
                    break
                start = offset + _LENGTH.size
                body = bytes(view[start + TAG_BYTES:end])
                expected = frame_tag(self._key, self._nonce, self._received, body)
                if not hmac.compare_digest(expected, view[start:start + TAG_BYTES]):
                    return self._refuse("frame failed authentication")
                self._received += 1
                offset = end
                try:
                    message = msgpack.unpackb(body, raw=False, strict_map_key=False)
                except (ValueError, TypeError, msgpack.UnpackException, RecursionError):
                    return self._refuse("authenticated frame is not msgpack")
                if message is None:
                    continue  # a ping
                if self._on_message is not None:
                    self._on_message(message)
                if self._state == CONNECTION_STATE.DISCONNECTED:
                    return
        finally:
            view.release()
        if self._state != CONNECTION_STATE.DISCONNECTED:
            del self._inbox[:offset]

    def _refuse(self, reason: str) -> None:
        peer = None
        try:
            peer = self._socket.getpeername() if self._socket is not None else None
        except OSError:
            pass
        log.warning("event=peer_frame_refused peer=%s reason=%s", peer, reason)
        self.disconnect()


class PeerListener:
    """pysyncobj's TcpServer interface (bind, unbind): accepts connections as PeerConnections.
    It binds the member's own peer address, not every interface as pysyncobj's does."""

    def __init__(self, poller, host: str, port: int, on_connection: Callable[[PeerConnection], None],
                 key: bytes, timeout_s: float) -> None:
        self._poller, self._host, self._port = poller, host, port
        self._on_connection, self._key, self._timeout_s = on_connection, key, timeout_s
        self._socket: socket.socket | None = None

    def bind(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._poller.subscribe(sock.fileno(), self._on_event, POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR)

    def unbind(self) -> None:
        if self._socket is not None:
            self._poller.unsubscribe(self._socket.fileno())
            self._socket.close()
            self._socket = None

    def _on_event(self, descr: int, events: int) -> None:
        while self._socket is not None:
            try:
                sock, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED):
                    log.warning("event=peer_accept_failed reason=%s", err)
                    return
                raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self._on_connection(PeerConnection(self._poller, self._key, self._timeout_s, sock))


class PeerTransport(TCPTransport):
    """pysyncobj's TCPTransport with PeerConnections. Pass as
    `transportClass=functools.partial(PeerTransport, secret=...)`."""

    def __init__(self, syncObj, selfNode, otherNodes, *, secret: str) -> None:  # noqa: N803
        self._key = frame_key(secret)  # before super().__init__: it creates the server and connections
        super().__init__(syncObj, selfNode, otherNodes)

    def _timeout_s(self) -> float:
        return self._syncObj.conf.connectionTimeout

    def _createServer(self) -> None:  # noqa: N802 (pysyncobj's hook)
        host, port = self._selfNode.address.rsplit(":", 1)
        self._server = PeerListener(self._syncObj._poller, socket.gethostbyname(host) if ":" not in host else host,
                                    int(port), self._onNewIncomingConnection, self._key, self._timeout_s())

    def addNode(self, node) -> None:  # noqa: N802
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None and not isinstance(conn, PeerConnection):
            # The same wiring as pysyncobj's addNode, on a PeerConnection instead of its TcpConnection.
            ours = PeerConnection(self._syncObj._poller, self._key, self._timeout_s())
            ours.setOnConnectedCallback(lambda: self._onOutgoingConnected(ours))
            ours.setOnMessageReceivedCallback(lambda message: self._onMessageReceived(node, message))
            ours.setOnDisconnectedCallback(lambda: self._onDisconnected(ours))
            self._connections[node] = ours

    def corked(self):
        """Within it, every frame for one peer goes out in one send (one system call and one
        wake-up of the peer per loop turn, not one per message)."""
        return _Corked([c for c in self._connections.values() if isinstance(c, PeerConnection)])

    def _onTick(self) -> None:  # noqa: N802
        super()._onTick()
        now = monotonic()
        for conn in list(self._connections.values()) + list(self._unknownConnections):
            if isinstance(conn, PeerConnection):
                conn.keep_alive(now)


class _Corked:
    def __init__(self, connections: list[PeerConnection]) -> None:
        self._connections = connections

    def __enter__(self) -> None:
        for conn in self._connections:
            conn.corked = True

    def __exit__(self, *exc) -> None:
        for conn in self._connections:
            conn.uncork()


class EpollPoller:
    """pysyncobj's poller interface on epoll, whose own descriptor a trio task can wait on
    (it is readable while any registered descriptor is ready)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callable[[int, int], None]] = {}

    def fileno(self) -> int:
        return self._epoll.fileno()

    def subscribe(self, descr: int, callback, eventMask: int) -> None:  # noqa: N803 (pysyncobj's names)
        events = ((select.EPOLLIN if eventMask & POLL_EVENT_TYPE.READ else 0)
                  | (select.EPOLLOUT if eventMask & POLL_EVENT_TYPE.WRITE else 0)
                  | (select.EPOLLERR if eventMask & POLL_EVENT_TYPE.ERROR else 0))
        if descr in self._callbacks:
            try:
                self._epoll.modify(descr, events)
            except FileNotFoundError:  # closed and reused without unsubscribing: the kernel forgot it
                self._epoll.register(descr, events)
        else:
            self._epoll.register(descr, events)
        self._callbacks[descr] = callback

    def unsubscribe(self, descr: int) -> None:
        if self._callbacks.pop(descr, None) is not None:
            try:
                self._epoll.unregister(descr)
            except (OSError, ValueError):  # already closed: the kernel dropped it
                pass

    def poll(self, timeout: float) -> int:
        """Handle what is ready (waiting up to timeout if nothing is); returns how many."""
        ready = self._epoll.poll(timeout)
        for descr, events in ready:
            callback = self._callbacks.get(descr)
            if callback is None:
                continue
            mask = ((POLL_EVENT_TYPE.READ if events & select.EPOLLIN else 0)
                    | (POLL_EVENT_TYPE.WRITE if events & select.EPOLLOUT else 0)
                    | (POLL_EVENT_TYPE.ERROR if events & (select.EPOLLERR | select.EPOLLHUP) else 0))
            callback(descr, mask)
        return len(ready)
