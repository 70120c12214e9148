"""/predict's per-client budget: a token bucket per principal, in process, bounded in memory, and off at 0."""
import pytest

from layers.errors import RateLimited
from layers.edge.budget import RequestBudget


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_burst_then_the_rate_and_other_clients_untouched():
    clock = Clock()
    budget = RequestBudget(per_minute=60, clock=clock)
    for _ in range(60):
        budget.hit("api:a")                      # a burst of a minute's worth
    with pytest.raises(RateLimited) as err:
        budget.hit("api:a")
    assert err.value.retry_after_s == 1
    budget.hit("api:b")                          # another client has its own budget
    clock.t += 1.0                               # one token a second comes back
    budget.hit("api:a")
    with pytest.raises(RateLimited):
        budget.hit("api:a")


def test_off_at_zero_and_bounded_in_memory():
    budget = RequestBudget(per_minute=0)
    for _ in range(10_000):
        budget.hit("api:a")
    small = RequestBudget(per_minute=5, max_keys=100)
    for i in range(1000):                        # an attacker minting identities holds at most 100 buckets
        small.hit(f"api:x{i}")
    assert len(small._buckets) == 100
