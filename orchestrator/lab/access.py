"""`ketch lab access`: a TCP forwarder to the API servers that fails over between them.

    ketch lab access --listen 127.0.0.1:6443 --servers 10.77.0.1:6443,10.77.0.2:6443 [--netns NS]

Each worker runs one on its own loopback (the per-node proxy kubespray runs), so its kubelet and
proxy keep their API while any control plane is down. `ketch up` runs one more in the machine's
own network namespace for the user's kubectl: with --netns it binds its listener first and then
enters the lab namespace NS, so accepted connections are on the machine's loopback and outgoing
ones inside the lab: nothing is configured in the machine's namespace. TLS passes through: the
API server's certificate names 127.0.0.1 too.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys

import trio

log = logging.getLogger("ketch.lab.access")
CONNECT_TIMEOUT_S = 1.0
CHUNK = 65536


class Upstreams:
    """The servers in order, starting with the one that answered last (stickiness keeps TLS sessions warm)."""

    def __init__(self, servers: list[tuple[str, int]]) -> None:
        self.servers = servers
        self.good = 0

    async def connect(self) -> trio.SocketStream:
        errors = []
        for step in range(len(self.servers)):
            index = (self.good + step) % len(self.servers)
            host, port = self.servers[index]
            try:
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    stream = await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError) as err:
                errors.append(f"{host}:{port}: {err or 'timed out'}")
                continue
            self.good = index
            return stream
        raise OSError("no API server answers: " + "; ".join(errors))


async def pump(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
    try:
        while data := await source.receive_some(CHUNK):
            await sink.send_all(data)
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def forward(client: trio.SocketStream, upstreams: Upstreams) -> None:
    async with client:
        try:
            server = await upstreams.connect()
        except OSError as err:
            log.warning("event=no_upstream error=%s", err)
            return
        async with server:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, client, server)
                nursery.start_soon(pump, server, client)


def listening_socket(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(128)
    return sock


async def serve(sock: socket.socket, upstreams: Upstreams) -> None:
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    async with trio.open_nursery() as nursery:
        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
        nursery.start_soon(stop_on_signal)
        nursery.start_soon(trio.serve_listeners, lambda s: forward(s, upstreams), [listener])


def parse_servers(text: str) -> list[tuple[str, int]]:
    servers = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--servers takes HOST:PORT,..., got {item!r}")
        servers.append((host, int(port)))
    return servers


def run_access(args) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    try:
        upstreams = Upstreams(parse_servers(args.servers))
        sock = listening_socket(args.listen)
        if args.netns:
            from pyroute2 import netns
            netns.setns(args.netns, flags=0)  # the listener stays where it was bound
    except (ValueError, OSError) as err:
        print(f"ketch lab access: {err}", file=sys.stderr)
        return 2
    log.info("event=listening address=%s servers=%s", args.listen, args.servers)
    trio.run(serve, sock, upstreams)
    return 0
