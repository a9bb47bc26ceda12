"""The Kubernetes channel protocol over WebSocket (pure): what `kubectl exec` speaks since 1.30.

Every binary message starts with one byte naming a channel, as Kubernetes' remotecommand defines:
0 stdin (client to server), 1 stdout, 2 stderr, 3 error (one metav1 Status when the command ends),
4 resize (client to server, JSON {"Width", "Height"}). v5.channel.k8s.io adds channel 255, whose
payload is the number of a stream the client closes (kubectl sends it for stdin at end of input).
The exit code reaches kubectl as a Status with reason NonZeroExitCode and a cause of reason
ExitCode whose message is the code; kubectl exits with that code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4)  # preference order, as the kubelet's: the newest the client offers
PORT_FORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io"
MAX_RESIZE_BYTES = 256


class ChannelError(ValueError):
    """A message the protocol does not allow (the connection is closed with this text)."""


@dataclass(frozen=True)
class Data:
    channel: int
    payload: bytes


@dataclass(frozen=True)
class Resize:
    width: int
    height: int


@dataclass(frozen=True)
class Close:
    channel: int


def choose(offered: list[str], supported: tuple[str, ...]) -> str | None:
    """The first of `supported` that the client offered (Sec-WebSocket-Protocol), or None."""
    wanted = {p.strip() for p in offered}
    return next((p for p in supported if p in wanted), None)


def frame(channel: int, payload: bytes) -> bytes:
    if not 0 <= channel <= 255:
        raise ChannelError(f"channel {channel} is not a byte")
    return bytes([channel]) + payload


def parse(message: bytes, protocol: str) -> Data | Resize | Close:
    """A message from the client: stdin data, a terminal resize, or (v5) a stream's close."""
    if not message:
        raise ChannelError("an empty message names no channel")
    channel, payload = message[0], bytes(message[1:])
    if channel == STDIN:
        return Data(STDIN, payload)
    if channel == RESIZE:
        return parse_resize(payload)
    if channel == CLOSE and protocol == V5:
        if len(payload) != 1:
            raise ChannelError("a close message carries exactly one channel number")
        return Close(payload[0])
    raise ChannelError(f"a client may not write to channel {channel}")


def parse_resize(payload: bytes) -> Resize:
    if len(payload) > MAX_RESIZE_BYTES:
        raise ChannelError(f"a resize message is at most {MAX_RESIZE_BYTES} bytes")
    try:
        size = json.loads(payload)
        width, height = size.get("Width", 0), size.get("Height", 0)
    except (ValueError, AttributeError):
        raise ChannelError(f"a resize message is JSON {{\"Width\", \"Height\"}}, got {payload[:64]!r}") from None
    if not (isinstance(width, int) and isinstance(height, int)) or not (0 <= width < 65536 and 0 <= height < 65536):
        raise ChannelError(f"terminal size out of range: {width}x{height}")
    return Resize(width, height)


def exit_status(code: int, argv: list[str]) -> dict:
    """The error channel's Status when the command ended with `code` (Kubernetes' wording)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command {argv}, "
                       f"exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure_status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def status_message(status: dict) -> bytes:
    return frame(ERROR, json.dumps(status).encode())


@dataclass(frozen=True)
class ExecOptions:
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    container: str = ""


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[-1].lower() in ("true", "1")


def websocket_only(kind: str) -> str:
    """Why a SPDY/3.1 upgrade over plain HTTP is refused (the servers here speak WebSocket only)."""
    if kind == "portForward":
        return ("port-forward is served over WebSocket only (subprotocol SPDY/3.1+portforward.k8s.io, kubectl 1.31 "
                "and newer); SPDY/3.1 over a plain HTTP upgrade is not supported")
    return (f"{kind} is served over WebSocket only (subprotocols {', '.join(EXEC_PROTOCOLS)}, kubectl 1.30 "
            "and newer); SPDY/3.1 over a plain HTTP upgrade is not supported")


def exec_options(query_string: str, *, attach: bool = False) -> ExecOptions:
    """command=..&command=..&stdin=..&stdout=..&stderr=..&tty=..&container=.. as kubectl sends them.
    Kubernetes refuses a request with no stream at all, and drops stderr under a tty (a terminal
    has one output stream), as its remotecommand server does."""
    query = parse_qs(query_string, keep_blank_values=True)
    options = ExecOptions(query.get("command", []), _flag(query, "stdin"), _flag(query, "stdout"),
                          _flag(query, "stderr"), _flag(query, "tty"), (query.get("container") or [""])[-1])
    if not attach and not options.command:
        raise ChannelError("you must specify at least one command for the container")
    if not (options.stdin or options.stdout or options.stderr):
        raise ChannelError("you must specify at least one of stdin, stdout, stderr")
    if options.tty and options.stderr:
        options = ExecOptions(options.command, options.stdin, options.stdout, False, True, options.container)
    return options


def with_terminal(options: ExecOptions, tty: bool) -> ExecOptions:
    """An attach gets the container's terminal setting, not the one asked for (Kubernetes' kubelet:
    whether a process runs on a terminal cannot change after it started); a terminal has no stderr."""
    return ExecOptions(options.command, options.stdin, options.stdout, options.stderr and not tty, tty,
                       options.container)


def not_found_in_pod(container: str, pod: str, namespace: str) -> str:
    """Kubernetes' kubelet's refusal of an attach to a container that is not running (it looks among
    running containers only; the pod is named by its "full name", NAME_NAMESPACE)."""
    return f"container {container} not found in pod {pod}_{namespace}"
