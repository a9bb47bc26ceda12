"""A client for the proxy tests, run inside a lab namespace; prints one JSON list per run.

    python -m tests.proxy_client tcp ADDRESS PORT COUNT [TIMEOUT_S]   each connection's answer
    python -m tests.proxy_client udp-session ADDRESS PORT             one UDP socket (one 5-tuple):
        each line on stdin sends a datagram; each answer (or "timeout") is printed as a line

An answer is the backend's name, or what went wrong: "refused", "reset" or "timeout".
"""

from __future__ import annotations

import json
import socket
import sys


def tcp(address: str, port: int, count: int, timeout_s: float) -> list[str]:
    out = []
    for _ in range(count):
        try:
            with socket.create_connection((address, port), timeout=timeout_s) as conn:
                out.append(conn.recv(256).decode() or "closed")
        except ConnectionRefusedError:
            out.append("refused")
        except ConnectionResetError:
            out.append("reset")
        except TimeoutError:
            out.append("timeout")
        except OSError as err:
            out.append(f"error {err.errno}")
    return out


def udp_session(address: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        for line in sys.stdin:
            sock.sendto(line.strip().encode(), (address, port))
            try:
                answer = sock.recvfrom(2048)[0].decode()
            except TimeoutError:
                answer = "timeout"
            except OSError as err:
                answer = f"error {err.errno}"
            print(answer, flush=True)


if __name__ == "__main__":
    kind, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "tcp":
        print(json.dumps(tcp(address, port, int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 3.0)))
    else:
        udp_session(address, port)
