"""Block Kit messages for the slash commands (built with slack-sdk's block models, so they validate).

    predict_message(prediction, image_url)   label, confidence bar, version, the image, a /fix hint if unconfident
    fix_message(receipt)                      the vote that was recorded, and what happens to it
    rendezvous_message(result, image_url)     the chosen answer, the policy, the average, every version
    compare_message(model, report)            /models compare A B: a table of both versions and the chart
"""
from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, ImageBlock, MarkdownTextObject, SectionBlock

from layers.fixes import VoteReceipt
from layers.registry.commands import compare_table
from layers.intake import is_public_url
from layers.serving.prediction import Prediction
from layers.slack.front import Reply

PRETTY = {"engineer": "an engineer :computer:", "non_engineer": "not an engineer :art:"}


def bar(p: float, width: int = 10) -> str:
    full = round(p * width)
    return "▰" * full + "▱" * (width - full) + f" {p:.0%}"


def predict_message(p: Prediction, image_url: str | None, labels: tuple[str, ...]) -> Reply:
    blocks = [SectionBlock(text=MarkdownTextObject(
        text=f"*{PRETTY.get(p.label, p.label)}*\n`{bar(p.confidence)}`  ·  model `{p.model}` v{p.version}"))]
    if image_url and is_public_url(image_url):
        blocks.append(ImageBlock(image_url=image_url, alt_text=f"the image classified as {p.label}"))
    if p.unconfident:
        other = next((l for l in labels if l != p.label), p.label)
        target = image_url or "IMAGE_URL"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f":warning: Not sure ({p.confidence:.0%} < threshold). If this is wrong, teach me:\n"
                 f"`/fix {target} {other}`")]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"request `{p.request_id}` · {p.latency_ms:.1f} ms")]))
    return Reply(text=f"{p.label} ({p.confidence:.0%}, v{p.version})", blocks=[b.to_dict() for b in blocks],
                 response_type="in_channel")


def fix_message(r: VoteReceipt) -> Reply:
    head = ":repeat: Already recorded" if r.duplicate else ":white_check_mark: Vote recorded"
    blocks = [SectionBlock(text=MarkdownTextObject(
                  text=f"*{head}*: this image is *{r.label}*\nvote `{r.vote_id[:12]}` · image `{r.image_sha256[:12]}…`")),
              ContextBlock(elements=[MarkdownTextObject(text=r.next)])]
    return Reply(text=f"vote {r.vote_id[:12]}: {r.label}", blocks=[b.to_dict() for b in blocks], response_type="in_channel")


def rendezvous_message(r, image_url: str | None, pending: bool = False) -> Reply:
    """The chosen answer, which policy chose it, the average, and each version's own result. `pending`: the
    late versions are still scoring, and this message will be replaced when they answer."""
    chosen = r.chosen
    head = (f"*{PRETTY.get(chosen.label, chosen.label)}*  `{bar(chosen.confidence)}`  ·  v{chosen.version} "
            f"chosen by *{r.policy}*" if chosen else ":hourglass: no version answered before the deadline")
    late = "still scoring…" if pending else "late (missed the deadline)"
    lines = [f"v{a.version}: " + (late if a.late else f"{a.label} {a.confidence:.0%} in {a.latency_ms:.0f} ms")
             for a in r.answers]
    avg = ", ".join(f"{k} {v:.0%}" for k, v in r.average.items())
    blocks = [SectionBlock(text=MarkdownTextObject(text=head)),
              SectionBlock(text=MarkdownTextObject(text="\n".join(lines) + (f"\naverage: {avg}" if avg else "")))]
    if image_url and is_public_url(image_url):
        blocks.append(ImageBlock(image_url=image_url, alt_text="the image every version scored"))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"request `{r.request_id}` · deadline {r.deadline_ms:.0f} ms · {r.latency_ms:.0f} ms"
             + (" · the best answer so far; this message updates when the other versions answer" if pending else ""))]))
    text = f"{chosen.label} ({chosen.confidence:.0%}, v{chosen.version}, {r.policy})" if chosen else "no answer in time"
    return Reply(text=text, blocks=[b.to_dict() for b in blocks], response_type="in_channel")


def compare_message(model: str, r: dict) -> Reply:
    """Two versions side by side (layers.comparison): a table, the replay's verdict, and the chart when its
    link is public (Slack fetches images itself)."""
    a, b = r["a"], r["b"]
    table, note = compare_table(r)
    blocks = [SectionBlock(text=MarkdownTextObject(text=f"*{model}: v{a['version']} vs v{b['version']}*\n```{table}```")),
              ContextBlock(elements=[MarkdownTextObject(text=note)])]
    if r.get("chart_url") and is_public_url(r["chart_url"]):
        blocks.append(ImageBlock(image_url=r["chart_url"], alt_text=f"v{a['version']} and v{b['version']} compared"))
    return Reply(text=f"{model}: v{a['version']} vs v{b['version']}", blocks=[b.to_dict() for b in blocks],
                 response_type="in_channel")
