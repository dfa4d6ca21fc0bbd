"""Supply chain (docs/architecture.md, "Security"): every dependency, runtime and development, transitive
ones included, is locked by version and hash (requirements*.txt, from requirements*.in by
`make lock`), and everything that installs them refuses a file the lock does not name."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")


def _locked(path: Path) -> dict[str, tuple[str, int]]:
    """name → (version, number of hashes) of a lock file."""
    locked: dict[str, tuple[str, int]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if match := REQUIREMENT.match(line):
            name = match.group(1).lower().replace("_", "-")
            locked[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = locked[name]
            locked[name] = (version, hashes + 1)
    return locked


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if match := REQUIREMENT.match(line.strip()):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
        elif line.strip().startswith("-r "):
            pins |= _pins(path.parent / line.split()[1])
    return pins


@pytest.mark.parametrize("name", ["requirements", "requirements-dev"])
def test_every_dependency_is_locked_by_version_and_hash(name: str) -> None:
    locked = _locked(ROOT / f"{name}.txt")
    assert len(locked) > len(_pins(ROOT / f"{name}.in")), "the lock holds the transitive dependencies too"
    assert [n for n, (_, hashes) in locked.items() if hashes == 0] == []
    for package, version in _pins(ROOT / f"{name}.in").items():
        assert locked.get(package, ("missing",))[0] == version, f"{package}: {name}.in pins {version}; run `make lock`"


def test_the_development_lock_installs_the_same_runtime_as_the_image() -> None:
    runtime, development = _locked(ROOT / "requirements.txt"), _locked(ROOT / "requirements-dev.txt")
    assert {n: v for n, (v, _) in runtime.items()} == {n: development[n][0] for n in runtime}


def test_make_and_the_image_install_with_require_hashes_only() -> None:
    installs = [line for path in ("Makefile", "Dockerfile") for line in (ROOT / path).read_text().splitlines()
                if "pip install" in line and not line.lstrip().startswith("#")]
    # The project itself (the `arcserve` command) is the one exception: built from the checkout
    # with the hashed build backend already installed, it fetches nothing.
    own = [line for line in installs if line.rstrip().endswith("--editable .")]
    assert all(all(flag in line for flag in ("--no-index", "--no-deps", "--no-build-isolation")) for line in own), own
    checked = [line for line in installs if line not in own]
    assert len(checked) >= 2 and all("--require-hashes" in line for line in checked), installs
