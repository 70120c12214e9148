"""The charts are PNGs of the figures they are asked for (layers.analysis.charts)."""
import io

from PIL import Image

from layers.analysis.charts import comparison, training_report


def test_a_training_report_and_a_comparison_are_pngs():
    report = training_report([[50, 3], [4, 40]], ["engineer", "non_engineer"], [0.9, 0.6, 0.99], [True, False, True],
                             "engineer v3: hold-out accuracy 0.928")
    chart = comparison({"v1": {"hold-out": 0.93, "honest": None}, "v3": {"hold-out": 0.92, "honest": 0.81}},
                       "v1 against v3")
    for png in (report, chart):
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and img.width > 200 and img.height > 100
    assert training_report([[0, 0], [0, 0]], ["a", "b"], [], [], "empty")[:8] == b"\x89PNG\r\n\x1a\n"
