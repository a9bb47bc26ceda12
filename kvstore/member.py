"""`ketch kv serve`: one kv member process (replica + client port), and its configuration.

Bad configuration ends the process with exit status 2 and a one-line reason. The peer secret
keys the HMAC that authenticates every frame between members (kvstore.peer_transport): a peer
without it is disconnected at its first frame. The secret file must not be readable by group
or others, like ssh's keys.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import trio

from kvstore.collector import keep_full_collections_short

log = logging.getLogger("ketch.kv.member")
GIL_SWITCH_INTERVAL_S = 0.001


class ConfigError(Exception):
    """Bad configuration: the message is the one line the operator sees."""


@dataclass(frozen=True)
class MemberConfig:
    name: str
    data_dir: Path
    listen_client: tuple[str, int]
    listen_gateway: tuple[str, int] | None
    listen_peer: str
    peers: list[str]
    tokens: set[str]
    peer_secret: str


def parse_address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{what} must be HOST:PORT, got {text!r}")
    return host, int(port)


def parse_initial_cluster(text: str) -> dict[str, str]:
    members = {}
    for part in filter(None, text.split(",")):
        name, sep, address = part.partition("=")
        if not sep or not name:
            raise ConfigError(f"--initial-cluster entries are NAME=HOST:PORT, got {part!r}")
        parse_address(address, f"--initial-cluster address of {name}")
        members[name] = address
    if not members:
        raise ConfigError("--initial-cluster names no member")
    return members


def read_tokens(path: Path) -> set[str]:
    try:
        tokens = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    except OSError as err:
        raise ConfigError(f"cannot read token file {path}: {err.strerror}") from None
    if not tokens:
        raise ConfigError(f"token file {path} holds no token")
    return tokens


def read_secret(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        secret = path.read_text().strip()
    except OSError as err:
        raise ConfigError(f"cannot read peer secret file {path}: {err.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"peer secret file {path} is readable by others; chmod 600 it")
    if len(secret) < 16:
        raise ConfigError(f"peer secret in {path} is shorter than 16 characters")
    return secret


def new_secret_file(path: Path) -> None:
    """Write a fresh random secret, mode 0600; never overwrite an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists; remove it first to make a new secret") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


def build_config(args) -> MemberConfig:
    cluster = parse_initial_cluster(args.initial_cluster)
    if args.name not in cluster:
        raise ConfigError(f"--name {args.name!r} is not in --initial-cluster")
    peer = cluster[args.name]
    if args.listen_peer and args.listen_peer != peer:
        raise ConfigError(f"--listen-peer {args.listen_peer} differs from this member's "
                          f"--initial-cluster address {peer}")
    return MemberConfig(
        name=args.name,
        data_dir=Path(args.data_dir),
        listen_client=parse_address(args.listen_client, "--listen-client"),
        listen_gateway=parse_address(args.listen_gateway, "--listen-gateway") if args.listen_gateway else None,
        listen_peer=peer,
        peers=[address for name, address in cluster.items() if name != args.name],
        tokens=read_tokens(Path(args.token_file)),
        peer_secret=read_secret(Path(args.peer_secret_file)),
    )


async def run_member(config: MemberConfig, unsafe_local_reads: bool = False, *,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:
    from kvstore.replica import Replica
    from kvstore.server import KVServer, ReplicaEvents

    feed = ReplicaEvents(trio.lowlevel.current_trio_token())
    try:
        replica = Replica(config.listen_peer, config.peers, config.data_dir, config.peer_secret,
                          on_applied=feed.applied, deliver=feed.deliver,
                          on_leader_change=feed.leader_changed, raft_thread=False)
    except Exception as err:  # pysyncobj raises SyncObjException('BindError') and the like
        raise ConfigError(f"cannot start the raft replica on {config.listen_peer}: {err}") from None
    try:
        server = KVServer(replica, config.tokens, config.name, feed, unsafe_local_reads)
        if unsafe_local_reads:
            log.warning("event=unsafe_local_reads member=%s note=reads may be stale: for teaching only", config.name)
        host, port = config.listen_client
        log.info("event=member_start name=%s peer=%s client=%s:%s data_dir=%s", config.name,
                 config.listen_peer, host, port, config.data_dir)
        async with trio.open_nursery() as nursery:
            await nursery.start(replica.run)
            await nursery.start(server.serve, host, port)
            if config.listen_gateway:
                from kvstore.gateway import serve_gateway
                await nursery.start(serve_gateway, server, *config.listen_gateway)
                log.info("event=gateway_listening member=%s address=%s:%s", config.name, *config.listen_gateway)
            task_status.started()
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    log.info("event=member_stop name=%s signal=%s", config.name, signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break
    finally:
        replica.close()


def serve(args) -> int:
    # The Raft log's sync thread needs the GIL back the moment its fdatasync returns, while the
    # trio thread may be busy with clients: Python hands it over only after the switch
    # interval (5 ms by default). 1 ms bounds that wait (measured: the synced hop under load).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    keep_full_collections_short()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    try:
        config = build_config(args)
        trio.run(run_member, config, getattr(args, "unsafe_local_reads", False))
    except ConfigError as err:
        print(f"ketch kv serve: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. the client port is taken
        print(f"ketch kv serve: {err.strerror or err}", file=sys.stderr)
        return 2
    return 0
