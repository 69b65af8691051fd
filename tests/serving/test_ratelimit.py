"""The per-key token buckets, on a clock the test moves."""

from __future__ import annotations

import pytest

from serving.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_spends_its_burst_then_waits_for_the_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.5)  # one token comes back every half second
    clock.now += 0.5
    assert buckets.take("k") == 0.0
    assert buckets.take("k") == pytest.approx(0.5)


def test_keys_have_their_own_buckets_and_refill_stops_at_the_burst():
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    assert buckets.take("a") == 0.0 and buckets.take("a") == 0.0 and buckets.take("a") > 0
    assert buckets.take("b") == 0.0
    clock.now += 3600
    assert [buckets.take("a") > 0 for _ in range(3)] == [False, False, True]


def test_rate_zero_lets_everything_through():
    buckets = TokenBuckets(rate=0, burst=1, clock=Clock())
    assert not buckets.enabled and all(buckets.take("k") == 0.0 for _ in range(1000))
