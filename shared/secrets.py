"""Secrets from the environment: `NAME`, or the file `NAME_FILE` names (as Docker and
Kubernetes secrets are mounted). Never logged; a missing one is an error that names the
variable, not a silent default."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class MissingSecret(SystemExit):
    pass


def secret(name: str, env: Mapping[str, str] | None = None) -> str:
    """The value of NAME, else the contents of the file NAME_FILE (without its trailing
    newline), else the empty string."""
    env = os.environ if env is None else env
    if value := env.get(name):
        return value
    if path := env.get(f"{name}_FILE"):
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise MissingSecret(f"{name}_FILE names {path!r}, which cannot be read: {exc.strerror}") from None
    return ""


PEPPER_WHY = "API keys are stored and looked up as HMACs under it"
FORWARDING_WHY = "the portal signs the client address it forwards for with it (shared/http/vouch.py)"


def required(name: str, value: str, why: str) -> bytes:
    """`value` (a secret read with `secret(name)`) as bytes, or exit naming what is missing."""
    if len(value) < 16:
        raise MissingSecret(
            f"{name} (or {name}_FILE) must hold a secret of at least 16 characters: {why}. "
            "`make run` makes one for you; see docs/configuration.md"
        )
    return value.encode()


def optional(name: str, value: str, why: str) -> bytes | None:
    """Like `required`, but unset is allowed (None): only a set one that is too short exits."""
    return required(name, value, why) if value else None
