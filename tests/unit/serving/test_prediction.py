"""A prediction is a plain value: the top class of a probability vector, and its JSON (layers.serving.prediction)."""
from layers.serving.prediction import Prediction, top


def test_top_takes_the_most_probable_class_in_the_labels_order():
    assert top(["engineer", "non_engineer"], [0.2, 0.8]) == ("non_engineer", 0.8, {"engineer": 0.2, "non_engineer": 0.8})
    label, confidence, probs = top(["a", "b", "c"], [0.3333333333, 0.3333333333, 0.3333333334])
    assert (label, list(probs)) == ("c", ["a", "b", "c"]) and probs["a"] == 0.333333
    assert top(["a", "b"], [0.5, 0.5])[0] == "a"                  # a tie: the first class


def test_a_prediction_serialises_every_field():
    p = Prediction("r-1", "engineer", 3, "engineer", 0.91, False, {"engineer": 0.91, "non_engineer": 0.09}, 2.5,
                   "api:bot", "ab" * 32)
    assert p.to_json() == {"request_id": "r-1", "model": "engineer", "version": 3, "label": "engineer",
                           "confidence": 0.91, "unconfident": False,
                           "probabilities": {"engineer": 0.91, "non_engineer": 0.09}, "latency_ms": 2.5,
                           "user": "api:bot", "image_sha256": "ab" * 32}
