"""Failed authentication throttled per address and key id (shared/http/failures.py), on a
clock of the test's own."""
from __future__ import annotations

import pytest

from shared.http.failures import FailureThrottle, key_id_of, subjects
from shared.tenancy import new_api_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_of_failures_passes_then_the_wait_is_said_and_refills_slowly() -> None:
    clock = Clock()
    throttle = FailureThrottle(burst=10, refill_s=30, clock=clock)
    for _ in range(9):
        assert throttle.fail(["address 10.0.0.1"]) == []
        assert throttle.wait(["address 10.0.0.1"]) == 0.0
    assert throttle.fail(["address 10.0.0.1"]) == ["address 10.0.0.1"]  # the 10th empties it
    assert throttle.wait(["address 10.0.0.1"]) == pytest.approx(30.0)
    clock.now += 20
    assert throttle.wait(["address 10.0.0.1"]) == pytest.approx(10.0)
    clock.now += 10
    assert throttle.wait(["address 10.0.0.1"]) == 0.0  # one more failure may be tested
    assert throttle.fail(["address 10.0.0.1"]) == []  # still the same episode: reported once
    assert throttle.wait(["address 10.0.0.1"]) == pytest.approx(30.0)


def test_a_new_episode_is_reported_once_the_bucket_was_full_again() -> None:
    clock = Clock()
    throttle = FailureThrottle(burst=2, refill_s=1, clock=clock)
    assert [throttle.fail(["address a"]) for _ in range(2)] == [[], ["address a"]]
    clock.now += 2  # full again
    assert throttle.wait(["address a"]) == 0.0
    assert [throttle.fail(["address a"]) for _ in range(2)] == [[], ["address a"]]


def test_the_longest_wait_of_the_subjects_counts_and_others_are_untouched() -> None:
    throttle = FailureThrottle(burst=3, refill_s=10, clock=Clock())
    for _ in range(3):
        throttle.fail(["address a", "key_id k"])
    assert throttle.wait(["address b", "key_id k"]) == pytest.approx(10.0)  # the key id is being guessed
    assert throttle.wait(["address a"]) == pytest.approx(10.0)
    assert throttle.wait(["address b", "key_id other"]) == 0.0


def test_the_buckets_are_bounded_and_the_least_recently_touched_is_forgotten() -> None:
    throttle = FailureThrottle(burst=1, refill_s=60, clock=Clock(), max_tracked=3)
    for name in ("a", "b", "c"):
        throttle.fail([name])
    throttle.wait(["a"])  # touched: kept
    throttle.fail(["d"])
    assert len(throttle) == 3
    assert throttle.wait(["b"]) == 0.0  # forgotten
    assert throttle.wait(["a"]) > 0 and throttle.wait(["c"]) > 0 and throttle.wait(["d"]) > 0


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
