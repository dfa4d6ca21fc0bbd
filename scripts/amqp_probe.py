#!/usr/bin/env python3
"""Wait until a RabbitMQ broker completes an AMQP 0-9-1 handshake (connection open with the
URL's credentials and vhost), or say why not within the deadline. Standard library only, so
CI can run it before any virtual environment exists:

    python3 scripts/amqp_probe.py [--deadline 60] [amqp://user:pass@host:5672/vhost]

An open port is not enough: a broker out of file handles accepts TCP connections and never
answers them. This probe tells the two apart. Exit 0: the handshake completed; 1: it did
not within the deadline (the last reason is printed).
"""
from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time
from urllib.parse import unquote, urlsplit

FRAME_METHOD, FRAME_HEARTBEAT, FRAME_END = 1, 8, 0xCE
CONNECTION = 10
START, START_OK, TUNE, TUNE_OK, OPEN, OPEN_OK, CLOSE, CLOSE_OK = 10, 11, 30, 31, 40, 41, 50, 51


class NoAnswer(Exception):
    """The broker did not get through the handshake; the message says how far it got."""


def _shortstr(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("B", len(raw)) + raw


def _longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def _method(channel: int, class_id: int, method_id: int, arguments: bytes) -> bytes:
    payload = struct.pack(">HH", class_id, method_id) + arguments
    return struct.pack(">BHI", FRAME_METHOD, channel, len(payload)) + payload + bytes([FRAME_END])


class _Connection:
    def __init__(self, sock: socket.socket):
        self.sock = sock

    def _read(self, n: int, waiting_for: str) -> bytes:
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except TimeoutError:
                raise NoAnswer(f"the TCP connection is open but the broker sent no {waiting_for}") from None
            if not chunk:
                raise NoAnswer(f"the broker closed the connection before {waiting_for}")
            data += chunk
        return data

    def expect(self, method_id: int, waiting_for: str) -> bytes:
        while True:
            kind, _, size = struct.unpack(">BHI", self._read(7, waiting_for))
            payload = self._read(size + 1, waiting_for)[:-1]
            if kind == FRAME_HEARTBEAT:
                continue
            if kind != FRAME_METHOD:
                raise NoAnswer(f"expected {waiting_for}, got frame type {kind}")
            class_id, got = struct.unpack(">HH", payload[:4])
            if (class_id, got) == (CONNECTION, CLOSE):
                code, = struct.unpack(">H", payload[4:6])
                reason = payload[7:7 + payload[6]].decode(errors="replace")
                raise NoAnswer(f"the broker refused the connection: {code} {reason}")
            if (class_id, got) != (CONNECTION, method_id):
                raise NoAnswer(f"expected {waiting_for}, got method {class_id}.{got}")
            return payload[4:]


def handshake(url: str, timeout: float) -> None:
    """Open and close one AMQP connection; raise NoAnswer or OSError saying what failed."""
    parts = urlsplit(url)
    user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=timeout) as sock:
        sock.settimeout(timeout)
        conn = _Connection(sock)
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        conn.expect(START, "Connection.Start")
        sock.sendall(_method(0, CONNECTION, START_OK, (
            struct.pack(">I", 0)  # client properties: an empty table
            + _shortstr("PLAIN") + _longstr(f"\0{user}\0{password}".encode()) + _shortstr("en_US")
        )))
        tune = conn.expect(TUNE, "Connection.Tune (are the credentials right?)")
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        sock.sendall(_method(0, CONNECTION, TUNE_OK, struct.pack(">HIH", channel_max, frame_max, 0)))
        sock.sendall(_method(0, CONNECTION, OPEN, _shortstr(vhost) + _shortstr("") + b"\x00"))
        conn.expect(OPEN_OK, f"Connection.Open-Ok for vhost {vhost!r}")
        sock.sendall(_method(0, CONNECTION, CLOSE, struct.pack(">H", 200) + _shortstr("probe done") + struct.pack(">HH", 0, 0)))
        conn.expect(CLOSE_OK, "Connection.Close-Ok")


def wait(url: str, deadline_s: float, attempt_timeout_s: float = 5.0) -> str | None:
    """None once a handshake succeeds; else the last reason, after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            handshake(url, min(attempt_timeout_s, max(0.5, deadline - time.monotonic())))
            return None
        except (NoAnswer, OSError) as exc:
            reason = str(exc) or exc.__class__.__name__
        if time.monotonic() >= deadline:
            return reason
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--deadline", type=float, default=60.0, metavar="S", help="give up after S seconds")
    args = parser.parse_args()
    parts = urlsplit(args.url)  # named without the credentials
    where = f"{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"
    started = time.monotonic()
    reason = wait(args.url, args.deadline)
    if reason is None:
        print(f"amqp-probe: {where} completed an AMQP handshake in {time.monotonic() - started:.1f}s")
        return 0
    print(f"amqp-probe: no AMQP handshake with {where} within {args.deadline:g}s: {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
