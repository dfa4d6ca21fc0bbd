"""Free TCP ports on loopback, for processes and containers a test starts."""
from __future__ import annotations

import socket


def free_ports(n: int) -> list[int]:
    """`n` distinct ports nobody listens on now (all bound at once, so they differ)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
