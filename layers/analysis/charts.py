"""Small PNG charts with matplotlib: a version's training report and the comparison of two versions.

Example:
    png = training_report(confusion=[[50, 3], [4, 40]], labels=["engineer", "non_engineer"],
                          confidence=[0.93, 0.61, ...], correct=[True, False, ...], title="engineer v3")
    png = comparison({"v1": {"hold-out": 0.87, "fixes": 0.5}, "v3": {"hold-out": 0.88, "fixes": 0.9}},
                     title="engineer v1 vs v3")

IMPORTANT: figures are built with matplotlib's object API on the Agg canvas (no pyplot, no global state), so
concurrent requests can draw at once. matplotlib is imported on first use: functions that never draw do not
pay for it.
"""
from __future__ import annotations

import io
from typing import Sequence

DPI = 100


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def training_report(confusion: Sequence[Sequence[int]], labels: Sequence[str], confidence: Sequence[float],
                    correct: Sequence[bool], title: str, unconfident_below: float = 0.8) -> bytes:
    """Left: the hold-out confusion matrix. Right: how confident the version is on the hold-out images, right
    and wrong answers stacked, with the unconfident threshold marked."""
    fig = _figure(9.0, 3.8)
    fig.suptitle(title)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    cm = [[int(v) for v in row] for row in confusion]
    left.imshow(cm, cmap="Blues", vmin=0)
    peak = max((v for row in cm for v in row), default=0)
    for i, row in enumerate(cm):
        for j, v in enumerate(row):
            left.text(j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    left.set_xticks(range(len(labels)), labels)
    left.set_yticks(range(len(labels)), labels)
    left.set_xlabel("predicted")
    left.set_ylabel("true")
    left.set_title("hold-out confusion")
    bins = [i / 20 for i in range(int(1 / len(labels) * 20) if labels else 0, 21)]
    right.hist([[c for c, ok in zip(confidence, correct) if ok], [c for c, ok in zip(confidence, correct) if not ok]],
               bins=bins or 10, stacked=True, label=["right", "wrong"], color=["#4c72b0", "#dd8452"])
    right.axvline(unconfident_below, color="grey", linestyle="--", label=f"unconfident below {unconfident_below}")
    right.set_xlabel("confidence of the predicted class")
    right.set_ylabel("hold-out images")
    right.set_title("confidence on the hold-out")
    right.legend(loc="upper left")
    return _png(fig)


def comparison(series: dict[str, dict[str, float | None]], title: str) -> bytes:
    """Grouped bars: one group per measure (hold-out accuracy, fix accuracy, ...), one bar per version.
    A measure a version has no value for (None) gets no bar and a note."""
    fig = _figure(6.4, 3.4)
    ax = fig.subplots()
    measures = list(dict.fromkeys(m for values in series.values() for m in values))
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        xs = [i + k * width for i, m in enumerate(measures) if values.get(m) is not None]
        ys = [values[m] for m in measures if values.get(m) is not None]
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        for i, m in enumerate(measures):
            if values.get(m) is None:
                ax.text(i + k * width, 0.02, "n/a", ha="center", fontsize=8, rotation=90)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(measures))], measures)
    ax.set_ylim(0, 1.25)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper right", ncols=max(1, len(series)))
    return _png(fig)
