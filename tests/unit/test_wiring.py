"""The wiring builds each shared piece from Settings once, and only when asked (layers.wiring)."""
import dataclasses
import hashlib

from layers.config import AuthSettings, ServingSettings, Settings, SlackSettings
from layers.wiring import Wiring


def test_pieces_are_built_once_and_lazily():
    settings = dataclasses.replace(Settings(), auth=AuthSettings(api_tokens=f"bot {hashlib.sha256(b't').hexdigest()}"),
                                   serving=ServingSettings(predict_per_minute=7))
    w = Wiring(settings, "predict")
    assert "store" not in vars(w) and "db" not in vars(w)             # nothing built, nothing connected yet
    assert w.tokens is w.tokens and w.tokens.identify("Bearer t").name == "bot"
    assert w.budget is w.budget and w.budget.per_minute == 7
    assert w.store is w.store and w.store.settings is settings.s3
    assert w.db is w.db and "db" in vars(w)
    assert w.sink is w.sink and w.sink.client_id == "predict"


def test_the_review_channel_is_off_without_a_channel_and_a_bot_token():
    w = Wiring(dataclasses.replace(Settings(), slack=SlackSettings(review_channel="C1")), "predict")
    assert not w.review.enabled and w.review.stats() == {"channel": "C1", "posted": 0, "failed": 0, "queue": None}
    on = Wiring(dataclasses.replace(Settings(), slack=SlackSettings(review_channel="C1", bot_token="xoxb-1")), "predict")
    assert on.review.enabled and on.review.stats()["queue"] is not None

