"""/fix's recorder before any I/O: the class is checked, the limits are counted, and the receipt wraps the one
Vote (layers.ledger.recorder). The durable path (S3, Kafka, the ledger) is tested through the gateway
(tests/functions/test_fix.py)."""
import pytest

from layers.config import Settings
from layers.errors import BadInput, RateLimited
from layers.ledger import Vote
from layers.ledger.recorder import VoteReceipt, VoteRecorder


class Limiter:
    def __init__(self, limit: int) -> None:
        self.limit, self.hits = limit, []

    def hit(self, principal: str, action: str) -> None:
        self.hits.append((principal, action))
        if sum(p == principal for p, _ in self.hits) > self.limit:
            raise RateLimited("too many", retry_after_s=1)


def recorder(per_principal: int = 5, per_client: int = 5) -> VoteRecorder:
    return VoteRecorder(None, None, None, Limiter(per_principal), Settings(), client_limiter=Limiter(per_client))


def test_a_vote_is_admitted_only_for_a_known_class_and_within_both_limits():
    r = recorder(per_client=2)
    for unknown in ("Enginer", "", "engineer non_engineer", "_"):
        with pytest.raises(BadInput) as err:
            r.admit("api:bot:a", unknown)
        assert err.value.details["valid_labels"] == ["engineer", "non_engineer"] and r.limiter.hits == []   # nothing counted
    assert r.admit("api:bot:a", "engineer", client="api:bot") == "engineer"
    r.admit("api:bot:b", "engineer", client="api:bot")
    with pytest.raises(RateLimited):                        # a third sub-user of one client: the client's limit
        r.admit("api:bot:c", "engineer", client="api:bot")
    assert r.admit("slack:T1:U1", "non_engineer") == "non_engineer"      # a Slack user is no API client's


@pytest.mark.parametrize("said, meant", [("Engineer", "engineer"), ("ENGINEER", "engineer"),
                                         ("non-engineer", "non_engineer"), ("Non Engineer", "non_engineer"),
                                         ("nonengineer", "non_engineer"), ("non_engineer", "non_engineer")])
def test_a_class_is_named_in_any_case_with_a_space_a_hyphen_or_nothing(said, meant):
    assert recorder().validate_label(said) == meant


def test_the_receipt_wraps_the_vote():
    vote = Vote(vote_id="v" * 32, model="engineer", image_sha256="a" * 64, image_key="images/" + "a" * 64,
                label="engineer", principal="api:bot", source="api", created_at_ms=1)
    receipt = VoteReceipt(vote, duplicate=True, next="already recorded")
    assert receipt.to_json() == {"vote_id": "v" * 32, "model": "engineer", "image_sha256": "a" * 64,
                                 "image_key": "images/" + "a" * 64, "label": "engineer", "principal": "api:bot",
                                 "source": "api", "duplicate": True, "next": "already recorded"}
