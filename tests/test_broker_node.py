"""The machine's RabbitMQ node as the project starts and restarts it (scripts/rabbitmq-node.sh,
used by CI and by the fault suite's broker restart): it comes back with the open-files limit
it had, and waiting for it means an AMQP handshake (scripts/amqp_probe.py), so a broker that
accepts TCP and never answers is reported as such instead of hanging whoever waits."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.infra import Servers

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "scripts" / "rabbitmq-node.sh"
PROBE = ROOT / "scripts" / "amqp_probe.py"
MIN_OPEN_FILES = 4096


def _run(*argv: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


async def test_a_restart_keeps_the_open_files_limit_and_the_broker_answers_amqp(infrastructure: Servers) -> None:
    before = _run(NODE, "limit")
    assert before.returncode == 0 and before.stdout.strip().isdigit(), before

    restart = await asyncio.to_thread(_run, NODE, "restart")
    assert restart.returncode == 0, f"{restart.stdout}\n{restart.stderr}"

    after = int(_run(NODE, "limit").stdout)
    assert after >= int(before.stdout) and after >= MIN_OPEN_FILES, (before.stdout, after)
    assert f"open-files limit {after}; AMQP handshake completed" in restart.stdout
    started = time.monotonic()
    probe = _run(sys.executable, PROBE, "--deadline", "30", infrastructure.amqp_url)
    assert probe.returncode == 0 and "completed an AMQP handshake" in probe.stdout, probe
    assert time.monotonic() - started < 30


def test_a_broker_that_accepts_tcp_but_never_answers_is_reported_as_such() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        probe = _run(sys.executable, PROBE, "--deadline", "3", f"amqp://guest:guest@127.0.0.1:{port}/")
        took = time.monotonic() - started

    assert probe.returncode == 1
    assert "the TCP connection is open but the broker sent no Connection.Start" in probe.stderr, probe.stderr
    assert took < 10, took  # it gave up at its deadline, it did not hang


def test_a_refused_port_is_reported_as_such() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        probe = _run(sys.executable, PROBE, "--deadline", "1", f"amqp://guest:guest@127.0.0.1:{port}/")
    assert probe.returncode == 1 and "Connection refused" in probe.stderr, probe.stderr
