"""`make database` (scripts/prepare_database.py) before the provisioning step: on Debian's
`postgresql` as installed, which asks every TCP login for a password and gives `postgres` none,
one line says what to run instead of a failed login deep in provisioning. Here on a cluster of
the test's own, made as Debian's pg_createcluster makes one (peer on the socket,
scram-sha-256 over TCP); the machine's own server is never touched."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import DEFAULT_DATABASE_URL
from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
PREPARE = ROOT / "scripts" / "prepare_database.py"
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)), None)


def _prepare(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGUSER")}
    return subprocess.run([sys.executable, str(PREPARE)], env={**env, "DATABASE_URL": url}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def _as_postgres(*argv: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def stock_cluster() -> Iterator[tuple[Path, int]]:
    if PG_BIN is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs Debian's postgresql and root (the cluster runs as the postgres user)")
    base = Path(tempfile.mkdtemp(prefix="arcserve-pg-"))
    shutil.chown(base, "postgres")
    [port] = free_ports(1)
    bin_dir = PG_BIN.parent
    _as_postgres(str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "postgres", "--auth-local=peer",
                 "--auth-host=scram-sha-256")
    _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"), "-w", "-o",
                 f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start")
    try:
        yield base, port
    finally:
        _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_the_script_reads_the_database_as_the_provisioning_step_does() -> None:
    sys.path.insert(0, str(PREPARE.parent))
    try:
        import prepare_database
    finally:
        sys.path.remove(str(PREPARE.parent))
    assert prepare_database.DEFAULT_DATABASE_URL == DEFAULT_DATABASE_URL


def test_a_stock_server_that_asks_for_a_password_gets_one_line_saying_what_to_run(
        stock_cluster: tuple[Path, int]) -> None:
    socket_dir, port = stock_cluster
    done = _prepare(f"postgresql://postgres@127.0.0.1:{port}/arcserve")
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"database: PostgreSQL at 127.0.0.1:{port} asks postgres for a password "
                                  "(scram-sha-256"), done.stderr
    assert done.stderr.endswith(f"psql -p {port} -c \"ALTER ROLE postgres PASSWORD 'PASSWORD'\"` and export "
                                f"DATABASE_URL=postgresql://postgres:PASSWORD@127.0.0.1:{port}/arcserve\n"), done.stderr

    # Done as the line says, the check passes and the provisioning step's login works.
    password = secrets.token_hex(12)
    _as_postgres("psql", "-h", str(socket_dir), "-p", str(port), "-c", f"ALTER ROLE postgres PASSWORD '{password}'")
    url = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    assert _prepare(url).returncode == 0
    login = subprocess.run([sys.executable, "-c", f"import asyncio, asyncpg; asyncio.run(asyncpg.connect({url!r}))"],
                           capture_output=True, text=True, timeout=60)
    assert login.returncode == 0, login.stderr


def test_a_server_that_is_down_gets_one_line_saying_how_to_start_it() -> None:
    [closed] = free_ports(1)
    done = _prepare(f"postgresql://postgres@127.0.0.1:{closed}/arcserve")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"database: no PostgreSQL answers at 127.0.0.1:{closed} (") and "start it with `" \
        in done.stderr, done.stderr


def test_a_server_that_lets_the_url_in_is_left_to_the_provisioning_step() -> None:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.skip("needs DATABASE_URL (make test sets it)")
    done = _prepare(url)
    assert (done.returncode, done.stderr) == (0, "")
