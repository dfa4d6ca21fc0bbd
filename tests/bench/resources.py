"""What the processes cost, read from /proc: CPU seconds per process and for the whole
machine, and each process's peak resident memory."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of one process, children it waited for included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / TICKS


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy since boot (all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """The most resident memory the process has held (VmHWM)."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """The resident memory the process holds now (VmRSS)."""
    return _status_mb(pid, "VmRSS")


def pids_of(user: str) -> list[int]:
    """Every process of a system user (the broker's `rabbitmq`, the database's `postgres`)."""
    done = subprocess.run(["pgrep", "-u", user], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


@dataclass
class Snapshot:
    """CPU so far: per named process, the broker's and database's processes, the machine."""

    processes: dict[str, float]
    broker: float
    database: float
    machine: float

    @classmethod
    def take(cls, named: dict[str, int]) -> Snapshot:
        def total(user: str) -> float:
            seconds = 0.0
            for pid in pids_of(user):
                try:
                    seconds += cpu_seconds(pid)
                except (FileNotFoundError, ProcessLookupError):
                    pass  # a database backend that just ended
            return seconds

        return cls({name: cpu_seconds(pid) for name, pid in named.items()}, total("rabbitmq"), total("postgres"),
                   machine_busy_seconds())

    def since(self, earlier: Snapshot) -> dict[str, float]:
        spent = {name: seconds - earlier.processes[name] for name, seconds in self.processes.items()}
        # Database backends come and go: a negative difference is one that ended meanwhile.
        return {**spent, "broker": max(0.0, self.broker - earlier.broker),
                "database": max(0.0, self.database - earlier.database), "machine": self.machine - earlier.machine}
