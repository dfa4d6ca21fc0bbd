"""Local runs listen on loopback only (docs/security.md): the portal started as `make run` starts it
(scripts/run_local.py, ARCSERVE_HOST unset) binds its port and its operator port to 127.0.0.1, as the
kernel's own table of listening sockets shows, and nothing on another address or on IPv6."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from services.intake.config import IntakeSettings
from shared.sealing import Keyring
from tests.support import scripts
from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 30.0
LISTEN = "0A"  # the state column of /proc/net/tcp


def listening(ports: set[int]) -> dict[int, set[str]]:
    """The addresses each of `ports` listens on, from /proc/net/tcp and tcp6 (IPv6 ones as hex)."""
    found: dict[int, set[str]] = {}
    for table, ipv4 in (("/proc/net/tcp", True), ("/proc/net/tcp6", False)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == LISTEN and int(port, 16) in ports:
                shown = socket.inet_ntoa(bytes.fromhex(address)[::-1]) if ipv4 else f"[{address}]"
                found.setdefault(int(port, 16), set()).add(shown)
    return found


def test_a_process_started_as_make_run_starts_it_listens_on_loopback_only(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(scripts.SCRIPTS))  # run_local imports demo.py beside it
    run_local = scripts.load("run_local")
    port, metrics_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if k != "ARCSERVE_HOST"}  # as an operator's shell may have it
    env.update(PORTAL_PORT=str(port), PORTAL_METRICS_PORT=str(metrics_port))
    env = run_local.portal_env(env, 8080, 8081, {"ARCSERVE_PORTAL_SESSION_KEYRING": Keyring.new_key_text(),
                                                 "ARCSERVE_FORWARDING_SECRET": secrets.token_urlsafe(32)})
    log = tmp_path / "portal.log"
    with log.open("wb") as out:
        process = subprocess.Popen(run_local.command("portal"), cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(found := listening({port, metrics_port})) < 2:
            assert process.poll() is None, f"the portal exited ({process.returncode}): {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"the portal did not listen within {DEADLINE_S}s: {found}"
            time.sleep(0.1)
        assert found == {port: {"127.0.0.1"}, metrics_port: {"127.0.0.1"}}, found
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_every_process_binds_loopback_unless_told_otherwise() -> None:
    from services.portal.config import PortalSettings

    urls: dict[str, Any] = {"amqp_url": "amqp://intake@127.0.0.1/", "database_url": "postgresql://intake@127.0.0.1/arcserve"}
    assert IntakeSettings(**urls).host == PortalSettings().host == "127.0.0.1"
    assert IntakeSettings(**urls, host="0.0.0.0").host == "0.0.0.0"  # ARCSERVE_HOST, as containers set it
