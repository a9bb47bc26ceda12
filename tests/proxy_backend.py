"""A service backend for the proxy tests: answers every TCP connection with its name and echoes
UDP datagrams prefixed with its name, on one address and port.

    python -m tests.proxy_backend ADDRESS PORT [NAME]
"""

from __future__ import annotations

import socket
import sys
import threading


def main(address: str, port: int, name: str) -> None:
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((address, port))
    tcp.listen(128)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((address, port))

    def echo() -> None:
        while True:
            data, peer = udp.recvfrom(2048)
            udp.sendto(name.encode() + b" " + data, peer)
    threading.Thread(target=echo, daemon=True).start()
    while True:
        conn, _ = tcp.accept()
        try:
            conn.sendall(name.encode())
        except OSError:
            pass
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else sys.argv[1])
