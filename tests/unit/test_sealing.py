"""Sealed license keys (shared/sealing.py): AES-256-GCM, bound to their license, rotatable."""
from __future__ import annotations

import pytest

from shared.sealing import Keyring, KeyringError


def test_a_sealed_key_opens_only_for_its_own_license_and_never_shows_in_clear() -> None:
    keyring = Keyring.parse(Keyring.new_key_text("k1"))
    sealed = keyring.seal("ABCDE-FGHIJ-KLMNO", context="license-1")
    assert sealed.startswith("v1:k1:") and "ABCDE" not in sealed
    assert sealed != keyring.seal("ABCDE-FGHIJ-KLMNO", context="license-1")  # a fresh nonce each time
    assert keyring.open(sealed, context="license-1") == "ABCDE-FGHIJ-KLMNO"
    with pytest.raises(KeyringError, match="does not open for its context"):
        keyring.open(sealed, context="license-2")  # copied onto another row
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(KeyringError):
        keyring.open(tampered, context="license-1")


def test_a_rotated_keyring_seals_with_the_new_key_and_still_opens_the_old_ones() -> None:
    old = Keyring.new_key_text("k1")
    before = Keyring.parse(old).seal("KEY", context="c")
    rotated = Keyring.parse(f"{Keyring.new_key_text('k2')},{old}")
    assert rotated.seal("KEY", context="c").startswith("v1:k2:")
    assert rotated.open(before, context="c") == "KEY"
    with pytest.raises(KeyringError, match="of key 'k1'.*does not hold"):
        Keyring.parse(Keyring.new_key_text("k2")).open(before, context="c")  # the old key dropped too soon


@pytest.mark.parametrize(("text", "problem"), [
    ("", "is not set"),
    ("k1", "must look like id:base64-key"),
    ("k1:not base64!", "key 'k1' is not base64"),
    ("k1:c2hvcnQ=", "key 'k1' has 5 bytes; AES-256 takes 32"),
])
def test_a_misconfigured_keyring_is_refused_naming_the_problem_never_the_key(text: str, problem: str) -> None:
    with pytest.raises(KeyringError, match=problem) as refused:
        Keyring.parse(text)
    assert "c2hvcnQ" not in str(refused.value)
    assert "k1" not in repr(Keyring.parse(Keyring.new_key_text("k9")))
