"""Metrics and the small PNG report (learning curve + confusion matrix), drawn with Pillow."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def metrics(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    pred = probs.argmax(1) if len(probs) else np.zeros(0, int)
    n = len(labels)
    cm = np.zeros((n, n), int)
    for t, p in zip(y_true, pred):
        cm[int(t), int(p)] += 1
    per_class = {}
    for i, name in enumerate(labels):
        tp = cm[i, i]
        per_class[name] = {"precision": float(tp / cm[:, i].sum()) if cm[:, i].sum() else None,
                           "recall": float(tp / cm[i, :].sum()) if cm[i, :].sum() else None,
                           "support": int(cm[i, :].sum())}
    return {"accuracy": float((pred == y_true).mean()) if len(y_true) else None, "n": int(len(y_true)),
            "per_class": per_class, "confusion": cm.tolist()}


def report_png(history: dict, confusion: list[list[int]], labels: list[str], title: str) -> bytes:
    w, h = 640, 300
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((10, 6), title, fill="black")
    # learning curve (left)
    x0, y0, x1, y1 = 40, 30, 360, 270
    d.rectangle([x0, y0, x1, y1], outline="black")
    colors = {"loss": (200, 40, 40), "accuracy": (40, 120, 200), "val_loss": (240, 150, 150), "val_accuracy": (140, 190, 240)}
    for k, series in history.items():
        if k not in colors or not series:
            continue
        vals = np.asarray(series, float)
        top = max(1.0, float(vals.max())) if "loss" in k else 1.0
        pts = [(x0 + (x1 - x0) * i / max(1, len(vals) - 1), y1 - (y1 - y0) * float(v) / top) for i, v in enumerate(vals)]
        if len(pts) > 1:
            d.line(pts, fill=colors[k], width=2)
    for i, k in enumerate(k for k in colors if k in history):
        d.text((x0 + 6, y0 + 4 + 12 * i), k, fill=colors[k])
    d.text((x0, y1 + 6), "epochs ->", fill="black")
    # confusion matrix (right)
    cm = np.asarray(confusion)
    cx, cy, cell = 420, 60, 80
    d.text((cx, cy - 24), "confusion (rows: true, cols: predicted)", fill="black")
    peak = max(1, int(cm.max())) if cm.size else 1
    for i in range(len(labels)):
        d.text((cx - 80, cy + cell * i + cell // 2 - 6), labels[i][:13], fill="black")
        d.text((cx + cell * i + 4, cy + cell * len(labels) + 4), labels[i][:13], fill="black")
        for j in range(len(labels)):
            v = int(cm[i, j]) if cm.size else 0
            shade = 255 - int(200 * v / peak)
            d.rectangle([cx + cell * j, cy + cell * i, cx + cell * (j + 1), cy + cell * (i + 1)],
                        fill=(shade, shade, 255), outline="black")
            d.text((cx + cell * j + cell // 2 - 8, cy + cell * i + cell // 2 - 6), str(v), fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
