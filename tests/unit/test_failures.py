"""Failed authentication throttled per address and key id (shared/http/failures.py), on a
clock of the test's own."""
from __future__ import annotations

import pytest

from shared.http import vouch
from shared.http.failures import BUSY, FailureThrottle, key_id_of, subjects
from shared.tenancy import new_api_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: FailureThrottle, *names: str) -> tuple[float, list[str]]:
    """One wrong key, as the authenticator counts it: reserved before the look-up, spent after."""
    wait = throttle.take(names)
    return wait, (throttle.failed(names) if wait == 0.0 else [])


def test_the_budget_of_failures_passes_then_the_wait_is_said_and_refills_slowly() -> None:
    clock = Clock()
    throttle = FailureThrottle(burst=10, refill_s=30, clock=clock)
    assert [fail(throttle, "address a") for _ in range(9)] == [(0.0, [])] * 9
    assert fail(throttle, "address a") == (0.0, ["address a"])  # the 10th is looked up, and empties it
    assert throttle.take(["address a"]) == pytest.approx(30.0)  # the 11th is not
    clock.now += 20
    assert throttle.take(["address a"]) == pytest.approx(10.0)
    clock.now += 10
    assert fail(throttle, "address a") == (0.0, [])  # one more may be tested; the same episode, reported once
    assert throttle.take(["address a"]) == pytest.approx(30.0)


def test_keys_sent_all_at_once_cannot_all_be_tested() -> None:
    throttle = FailureThrottle(burst=10, refill_s=30, clock=Clock())
    taken = [throttle.take(["address a"]) for _ in range(300)]  # none has ended yet
    assert taken.count(0.0) == 10 and taken.count(BUSY) == 290  # the rest wait: nothing is spent yet
    for _ in range(10):
        throttle.failed(["address a"])
    assert throttle.take(["address a"]) == pytest.approx(30.0)  # now spent: refused, not looked up


def test_valid_keys_sent_all_at_once_are_all_served_in_turn() -> None:
    """The fault run's 40 clients on one address, each with a key new here: none is refused."""
    throttle = FailureThrottle(burst=10, refill_s=30, clock=Clock())
    waiting, served = 40, 0
    while waiting:
        batch = [throttle.take(["address a"]) for _ in range(waiting)]
        assert BUSY in batch or batch.count(0.0) == waiting
        assert all(wait in (0.0, BUSY) for wait in batch)  # never a refusal
        for _ in range(batch.count(0.0)):
            throttle.give_back(["address a"])  # found: its token is free again
        served += batch.count(0.0)
        waiting -= batch.count(0.0)
    assert served == 40


def test_a_valid_key_costs_nothing() -> None:
    throttle = FailureThrottle(burst=2, refill_s=30, clock=Clock())
    for _ in range(100):
        assert throttle.take(["address a"]) == 0.0
        throttle.give_back(["address a"])  # nothing spent
    assert [fail(throttle, "address a")[0] for _ in range(3)] == [0.0, 0.0, pytest.approx(30.0)]


def test_a_new_episode_is_reported_once_the_bucket_was_full_again() -> None:
    clock = Clock()
    throttle = FailureThrottle(burst=2, refill_s=1, clock=clock)
    assert [fail(throttle, "address a") for _ in range(2)] == [(0.0, []), (0.0, ["address a"])]
    clock.now += 2  # full again
    assert [fail(throttle, "address a") for _ in range(2)] == [(0.0, []), (0.0, ["address a"])]


def test_the_longest_wait_of_the_subjects_counts_and_others_are_untouched() -> None:
    throttle = FailureThrottle(burst=3, refill_s=10, clock=Clock())
    for _ in range(3):
        fail(throttle, "address a", "key_id k")
    assert throttle.take(["address b", "key_id k"]) == pytest.approx(10.0)  # the key id is being guessed
    assert throttle.take(["address a"]) == pytest.approx(10.0)
    assert throttle.take(["address b", "key_id other"]) == 0.0


def test_the_buckets_are_bounded_and_the_least_recently_touched_is_forgotten() -> None:
    throttle = FailureThrottle(burst=1, refill_s=60, clock=Clock(), max_tracked=3)
    for name in ("a", "b", "c"):
        fail(throttle, name)
    throttle.take(["a"])  # touched: kept
    fail(throttle, "d")
    assert len(throttle) == 3
    assert throttle.take(["a"]) > 0 and throttle.take(["c"]) > 0 and throttle.take(["d"]) > 0
    assert throttle.take(["b"]) == 0.0  # forgotten: as good as new


def test_only_the_visible_key_id_is_ever_a_subject() -> None:
    key_id, key = new_api_key()
    assert key_id_of(key) == key_id
    assert subjects("192.0.2.7", key) == ["address 192.0.2.7", f"key_id {key_id}"]
    assert all(key.split("_", 2)[2] not in subject for subject in subjects("192.0.2.7", key))
    # Seeded keys may be any string: only the address counts.
    assert key_id_of("acme-demo-key") is None
    assert key_id_of("arc_NOTANID99_secret") is None
    assert subjects("::1", "acme-demo-key") == ["address ::1"]


def test_a_throttle_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError):
        FailureThrottle(burst=0)
    with pytest.raises(ValueError):
        FailureThrottle(refill_s=0)


# ---- the address the portal vouches for (shared/http/vouch.py) ---------------------------
def test_a_vouched_address_verifies_only_with_the_secret_lately_and_unchanged() -> None:
    secret = b"s" * 32
    signed = vouch.sign(secret, "198.51.100.4", now=1000.0)
    assert vouch.verify(secret, signed, now=1030.0) == "198.51.100.4"
    assert vouch.verify(secret, signed, now=1000.0 + vouch.MAX_AGE_S + 1) is None  # a stale copy
    assert vouch.verify(b"t" * 32, signed, now=1000.0) is None
    assert vouch.verify(secret, signed.replace("198.51.100.4", "198.51.100.5"), now=1000.0) is None
    assert vouch.verify(secret, "198.51.100.4", now=1000.0) is None
    assert vouch.verify(secret, "a;b;c;d", now=1000.0) is None
    assert vouch.verify(secret, vouch.sign(secret, "2001:db8::1", now=1000.0), now=1000.0) == "2001:db8::1"
