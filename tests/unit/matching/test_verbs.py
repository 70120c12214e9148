"""The dating app's verbs (layers.matching.verbs): the methods each answers, and a stranger is a 404."""
import pytest

from layers.errors import NotFound
from layers.matching.verbs import METHODS, VOTES, methods_for


def test_each_verb_answers_its_methods_and_a_stranger_is_not_found():
    assert methods_for("signup") == ("POST",) and "DELETE" in methods_for("me") and "GET" not in methods_for("confirm")
    assert set(VOTES) <= set(METHODS)
    with pytest.raises(NotFound) as err:
        methods_for("swipe")
    assert "signup" in err.value.message
