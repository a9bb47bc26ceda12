"""Container logs in the CRI format, read as `kubectl logs` asks for them (pure).

A log file holds one line per write: `<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <text>`;
P marks a partial line whose rest follows in the next entry, F the end of a line. The kubelet's
/containerLogs answers with the text only (lines rejoined), each line prefixed by its timestamp
with ?timestamps=true, only lines at or after sinceSeconds/sinceTime, only the last tailLines,
and at most limitBytes bytes, as Kubernetes' kuberuntime logs reader does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


class LogOptionsError(ValueError):
    """A query parameter of /containerLogs is malformed (400)."""


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_s: float | None = None      # epoch seconds: lines from this instant on
    timestamps: bool = False
    limit_bytes: int | None = None
    previous: bool = False


@dataclass(frozen=True)
class Entry:
    timestamp: str
    epoch_s: float
    stream: str
    partial: bool
    text: bytes


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise LogOptionsError(f"{name}: expected true or false, got {query[name]!r}")
    return value in ("true", "1")


def _positive(query: dict[str, str], name: str, minimum: int) -> int | None:
    if name not in query:
        return None
    try:
        value = int(query[name])
    except ValueError:
        raise LogOptionsError(f"{name}: expected an integer, got {query[name]!r}") from None
    if value < minimum:
        raise LogOptionsError(f"{name}: must be at least {minimum}")
    return value


def parse_options(query: dict[str, str], now: float) -> LogOptions:
    """The options of a /containerLogs request (query parameters as Kubernetes names them)."""
    since = None
    seconds = _positive(query, "sinceSeconds", 1)
    if seconds is not None:
        since = now - seconds
    if "sinceTime" in query:
        if since is not None:
            raise LogOptionsError("at most one of sinceTime and sinceSeconds may be given")
        since = parse_timestamp(query["sinceTime"])
        if since is None:
            raise LogOptionsError(f"sinceTime: not an RFC 3339 time: {query['sinceTime']!r}")
    tail = _positive(query, "tailLines", 0)
    return LogOptions(follow=_flag(query, "follow"), tail_lines=tail, since_s=since,
                      timestamps=_flag(query, "timestamps"), limit_bytes=_positive(query, "limitBytes", 1),
                      previous=_flag(query, "previous"))


def parse_timestamp(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 time with up to nanoseconds (Z or an offset)."""
    try:
        head, _, rest = text.partition(".")
        fraction, zone = "", ""
        if rest:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            fraction, zone = rest[:digits], rest[digits:]
        else:
            head, zone = (head[:-1], "Z") if head.endswith("Z") else (head[:19], head[19:])
        base = datetime.strptime(head[:19], "%Y-%m-%dT%H:%M:%S")
        offset = 0.0
        if zone not in ("Z", "z", ""):
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = zone[1:].split(":")
            offset = sign * (int(hours) * 3600 + int(minutes) * 60)
        seconds = base.replace(tzinfo=timezone.utc).timestamp() - offset
        return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
    except (ValueError, IndexError):
        return None


def parse_line(line: bytes) -> Entry | None:
    """One line of a CRI log file (without its newline); None if it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp = parts[0].decode(errors="replace")
    epoch = parse_timestamp(stamp)
    if epoch is None or parts[1] not in (b"stdout", b"stderr"):
        return None
    tag = parts[2]
    text = parts[3] if len(parts) == 4 else b""
    return Entry(stamp, epoch, parts[1].decode(), tag.startswith(b"P"), text)


def render(entry: Entry, options: LogOptions) -> bytes:
    prefix = (entry.timestamp.encode() + b" ") if options.timestamps else b""
    return prefix + entry.text + (b"" if entry.partial else b"\n")


def wanted(entry: Entry, options: LogOptions) -> bool:
    return options.since_s is None or entry.epoch_s >= options.since_s


def select(lines: list[bytes], options: LogOptions) -> list[Entry]:
    """The entries of these complete log lines that the options ask for (before limitBytes)."""
    entries = [e for e in (parse_line(line) for line in lines) if e is not None and wanted(e, options)]
    if options.tail_lines is not None:
        ends = [i for i, e in enumerate(entries) if not e.partial]
        if options.tail_lines == 0:
            return []
        if len(ends) > options.tail_lines:
            entries = entries[ends[-options.tail_lines - 1] + 1:]
    return entries


class Limit:
    """limitBytes across a whole answer, follow included."""

    def __init__(self, limit_bytes: int | None) -> None:
        self.left = limit_bytes

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[:self.left]
        self.left -= len(data)
        return data

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0


FALLBACK_LINES, FALLBACK_BYTES = 80, 2048


def fallback_message(lines: list[bytes]) -> str:
    """terminationMessagePolicy FallbackToLogsOnError: the last 80 lines of the log, at most 2048
    bytes (Kubernetes' limits), as the terminated state's message."""
    entries = select(lines, LogOptions(tail_lines=FALLBACK_LINES))
    text = b"".join(render(e, LogOptions()) for e in entries)
    return text[-FALLBACK_BYTES:].decode(errors="replace")
