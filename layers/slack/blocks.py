"""Block Kit messages for the slash commands (built with slack-sdk's block models, so they validate).

    predict_message(prediction, image_url)   label, confidence bar, version, the image, a /fix hint if unconfident
    fix_message(receipt)                      the vote that was recorded, and what happens to it
    rendezvous_message(result, image_url)     the chosen answer, the policy, the average, every version
    compare_message(model, report)            /models compare A B: a table of both versions and the chart
    vote_buttons(sha, model, label, labels)   "right" and "it's <class>" under an unconfident answer
    tally_message(blocks, tally, receipt)     the message a click came from, with the running tally
    signup_message / match_message / profile_message / deleted_message / afterdark_help   the dating app
Text that users chose (display names) is escaped for mrkdwn (&, <, >), so it cannot mention or link anyone.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (ActionsBlock, ButtonElement, ContextBlock, ImageBlock, MarkdownTextObject,
                                     SectionBlock)

from layers.matching.rules import REMAINING_CAP
from layers.registry.commands import compare_table, table
from layers.edge.intake import is_public_url
from layers.slack.reply import Reply

if TYPE_CHECKING:          # types only: /predict's cold start loads neither the ledger nor psycopg for them
    from layers.ledger.recorder import VoteReceipt
    from layers.serving.prediction import Prediction

PRETTY = {"engineer": "an engineer :computer:", "non_engineer": "not an engineer :art:"}


def bar(p: float, width: int = 10) -> str:
    full = round(p * width)
    return "▰" * full + "▱" * (width - full) + f" {p:.0%}"


def escape(text: str) -> str:
    """User text inside mrkdwn: &, < and > escaped (Slack's rule), so no <@U…>, <!channel> or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vote_buttons(sha: str, model: str, label: str, labels: tuple[str, ...]) -> ActionsBlock:
    """One click, one vote on the image (action_id vote:<class>; the fix function records it)."""
    value = json.dumps({"sha": sha, "model": model})
    buttons = [ButtonElement(text=f"✓ right, {label}", action_id=f"vote:{label}", value=value, style="primary")]
    buttons += [ButtonElement(text=f"✗ it's {other}", action_id=f"vote:{other}", value=value)
                for other in labels if other != label]
    return ActionsBlock(block_id="vote", elements=buttons)


def tally_message(blocks: list[dict], tally: dict[str, int], receipt: VoteReceipt) -> Reply:
    """The message the click came from, with its running tally (one context block, replaced on each click)."""
    kept = [b for b in blocks if b.get("block_id") != "tally"]
    counts = " · ".join(f"{label} {n}" for label, n in tally.items())
    line = (f":ballot_box_with_ballot: votes so far: {counts}  (yours: *{receipt.vote.label}*"
            + (", already counted" if receipt.duplicate else "") + ")")
    at = next((i + 1 for i, b in enumerate(kept) if b.get("block_id") == "vote"), len(kept))
    kept.insert(at, ContextBlock(block_id="tally", elements=[MarkdownTextObject(text=line)]).to_dict())
    summary = ", ".join(f"{label} {n}" for label, n in tally.items())
    return Reply(text=f"votes so far: {summary}", blocks=kept, response_type="in_channel", replace_original=True)


def predict_message(p: Prediction, image_url: str | None, labels: tuple[str, ...]) -> Reply:
    blocks = [SectionBlock(text=MarkdownTextObject(
        text=f"*{PRETTY.get(p.label, p.label)}*\n`{bar(p.confidence)}`  ·  model `{p.model}` v{p.version}"))]
    if image_url and is_public_url(image_url):
        blocks.append(ImageBlock(image_url=image_url, alt_text=f"the image classified as {p.label}"))
    if p.unconfident:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f":warning: Not sure ({p.confidence:.0%} < threshold). Which is it? One click is one vote.")]))
        if p.image_sha256:
            blocks.append(vote_buttons(p.image_sha256, p.model, p.label, labels))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"request `{p.request_id}` · {p.latency_ms:.1f} ms")]))
    return Reply(text=f"{p.label} ({p.confidence:.0%}, v{p.version})", blocks=[b.to_dict() for b in blocks],
                 response_type="in_channel")


def combined(replies: list[Reply]) -> Reply:
    """Several answers as one message (a shortcut on a message with several images)."""
    if len(replies) == 1:
        return replies[0]
    blocks = [b for i, r in enumerate(replies) for b in ([{"type": "divider"}] if i else []) + r.blocks]
    return Reply(text="; ".join(r.text for r in replies), blocks=blocks, response_type=replies[0].response_type)


def fix_message(r: VoteReceipt, image_url: str | None = None) -> Reply:
    head = ":repeat: Already recorded" if r.duplicate else ":white_check_mark: Vote recorded"
    blocks = [SectionBlock(text=MarkdownTextObject(
                  text=f"*{head}*: this image is *{r.vote.label}*\nvote `{r.vote.vote_id[:12]}` · image `{r.vote.image_sha256[:12]}…`"))]
    if image_url and is_public_url(image_url):
        blocks.append(ImageBlock(image_url=image_url, alt_text=f"the image voted {r.vote.label}"))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=r.next)]))
    return Reply(text=f"vote {r.vote.vote_id[:12]}: {r.vote.label}", blocks=[b.to_dict() for b in blocks], response_type="in_channel")


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
    """Two versions side by side (layers.analysis.comparison): a table, the replay's verdict, and the chart when its
    link is public (Slack fetches images itself)."""
    a, b = r["a"], r["b"]
    table, note = compare_table(r)
    blocks = [SectionBlock(text=MarkdownTextObject(text=f"*{model}: v{a['version']} vs v{b['version']}*\n```{table}```")),
              ContextBlock(elements=[MarkdownTextObject(text=note)])]
    if r.get("chart_url") and is_public_url(r["chart_url"]):
        blocks.append(ImageBlock(image_url=r["chart_url"], alt_text=f"v{a['version']} and v{b['version']} compared"))
    return Reply(text=f"{model}: v{a['version']} vs v{b['version']}", blocks=[b.to_dict() for b in blocks],
                 response_type="in_channel")


# -- the dating app ------------------------------------------------------------------------------------------

def models_message(model: str, text: str, result: dict, rows: int = 20) -> Reply:
    """A /models answer: the versions as a table (the newest `rows`: a section holds 3000 characters), the
    comparison, or the result as JSON."""
    if "versions" in result:
        shown = result["versions"][-rows:]
        older = len(result["versions"]) - len(shown)
        body = (f"*{model}*, control revision {result['revision']}\n```{table(shown)}```"
                + (f"\n_{older} older versions not shown (`/models show N`)_" if older else ""))
    else:
        body = f"```{json.dumps(result, indent=1, sort_keys=True)[:2800]}```"
    return Reply(text=f"{model}: {text}", response_type="in_channel",
                 blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": body}}])


def _photo(url: str | None, alt: str) -> list:
    return [ImageBlock(image_url=url, alt_text=alt)] if url and is_public_url(url) else []


def _scores(profile) -> str:
    each = profile.scores.get("each") or {}
    parts = [f"v{v}: {p.get('engineer', 0):.0%}" for v, p in sorted(each.items(), key=lambda kv: int(kv[0]))]
    return f"{profile.score:.0%} engineer (" + ", ".join(parts) + ")"


def side_buttons(photo_sha256: str, labels: tuple[str, ...]) -> ActionsBlock:
    value = json.dumps({"sha": photo_sha256})
    return ActionsBlock(block_id="side", elements=[
        ButtonElement(text=f"I'm {PRETTY.get(label, label).split(' :')[0]}", action_id=f"side:{label}", value=value)
        for label in labels])


def signup_message(signup, photo_url: str | None, labels: tuple[str, ...]) -> Reply:
    p, score = signup.profile, signup.score
    head = (f"*Welcome, {escape(p.display_name)}!* Two models say you are *{PRETTY.get(p.label, p.label)}*: "
            f"{_scores(p)}")
    blocks = [SectionBlock(text=MarkdownTextObject(text=head)), *_photo(photo_url, "your profile photo")]
    if score.unconfident:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f":thinking_face: They are not sure ({score.confidence:.0%}). Which side are you on? "
                 f"Your answer also teaches the model.")]))
        blocks.append(side_buttons(p.photo_sha256, labels))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text="`/afterdark match` finds your opposite.")]))
    return Reply(text=f"welcome, {p.display_name}: {p.label} ({p.score:.0%} engineer)",
                 blocks=[b.to_dict() for b in blocks], response_type="ephemeral")


def match_message(found, photo_url: str | None, explanation: str) -> Reply:
    if found.match is None:
        text = (":crystal_ball: Nobody from the other side has signed up yet. Check back soon."
                if found.why_none == "nobody-opposite" else
                ":tada: You have met everyone from the other side. Check back when new people sign up.")
        return Reply(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
                     response_type="ephemeral", replace_original=True)
    m = found.match.profile
    blocks = [SectionBlock(text=MarkdownTextObject(
                  text=f":sparkles: *{escape(m.display_name)}*, {PRETTY.get(m.label, m.label)}\n"
                       f"them: {_scores(m)}\nyou: {_scores(found.viewer)}")),
              *_photo(photo_url, f"{m.display_name}'s photo"),
              ContextBlock(elements=[MarkdownTextObject(text=escape(explanation))]),
              ActionsBlock(block_id="next", elements=[ButtonElement(text="Next match", action_id="next", value="{}")]),
              ContextBlock(elements=[MarkdownTextObject(
                  text=f"{found.remaining}{'+' if found.remaining >= REMAINING_CAP else ''} more to meet")])]
    return Reply(text=f"your match: {m.display_name}", blocks=[b.to_dict() for b in blocks],
                 response_type="ephemeral", replace_original=True)


def profile_message(p, photo_url: str | None) -> Reply:
    side = "confirmed by you" if p.confirmed else "by the models"
    versions = ", ".join(f"v{v}" for v in p.versions)
    blocks = [SectionBlock(text=MarkdownTextObject(
                  text=f"*{escape(p.display_name)}*: {PRETTY.get(p.label, p.label)} ({side})\n{_scores(p)}\n"
                       f"scored by {versions}")),
              *_photo(photo_url, "your profile photo")]
    return Reply(text=f"{p.display_name}: {p.label}", blocks=[b.to_dict() for b in blocks], response_type="ephemeral")


def side_thanks(reply: Reply, profile, receipt: VoteReceipt) -> Reply:
    """The profile card that replaces the one whose side button was clicked, with a thank-you: the photo is a
    vote."""
    reply.replace_original = True
    reply.blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                         f"Thanks! Your side is *{profile.label}*, and your photo is a vote (`{receipt.vote.vote_id[:12]}`)."}]})
    return reply


def deleted_message(d) -> Reply:
    if not d.profile:
        return Reply(text="you had no profile; nothing was deleted", response_type="ephemeral",
                     blocks=[SectionBlock(text=MarkdownTextObject(text="You had no profile; nothing was deleted.")).to_dict()])
    text = (f":wastebasket: Your profile and every match that involved it are deleted. Photo: {d.photo}."
            + (" A copy you confirmed your side with is a vote, and votes are kept." if d.vote_copy != "none" else ""))
    return Reply(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()], response_type="ephemeral")


def receipt_message(model: str, version: int, old: int | None, rows: list[tuple[str, str, str | None, str | None, str | None]]) -> Reply:
    """A vote receipt: `rows` are (image sha256, your label, the old version's answer, the new one's, a link
    to the image or None)."""
    lines = []
    for sha, yours, before, after, link in rows:
        image = f"<{link}|image `{sha[:10]}…`>" if link else f"image `{sha[:10]}…`"
        change = (f"v{old} said *{before}*, v{version} says *{after}*" if old is not None and before else
                  f"v{version} says *{after or '?'}*")
        lines.append(f"• {image}: you said *{yours}*; {change}")
    text = (f":mortar_board: *`{model}` v{version} is live, and it learnt from your votes.*\n" + "\n".join(lines))
    return Reply(text=f"{model} v{version} is live and learnt from {len(rows)} of your votes",
                 blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()], response_type="in_channel")


def decision_message(model: str, action: str, version: int, live: int, reason: str, evidence: dict) -> Reply:
    """The canary policy's decision, for the review channel."""
    mark = {"promoted": ":rocket:", "rolled-back": ":rewind:"}.get(action, ":bird:")
    ev = (f"{evidence.get('n', 0)} honest images: the canary alone right on {evidence.get('canary_only', 0)}, "
          f"live alone on {evidence.get('live_only', 0)}; LR {evidence.get('lr_better', '?')}, "
          f"p = {evidence.get('p_better', '?')} (alpha {evidence.get('alpha', '?')})")
    text = f"{mark} *`{model}` v{version} {action}* (live was v{live}): {reason}\n{ev}"
    return Reply(text=f"{model} v{version} {action}", blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
                 response_type="in_channel")


def question_message(model: str, sha: str, why: str, guess: str, labels: tuple[str, ...], link: str | None) -> Reply:
    """A question to the crowd in the review channel: the image, why it is asked, and the vote buttons."""
    image = f"<{link}|this image>" if link else f"image `{sha[:12]}…`"
    blocks = [SectionBlock(text=MarkdownTextObject(text=f":raising_hand: *Which is it?* {image}: {why}. "
                                                        f"One click is one vote; the model learns from the consensus.")),
              vote_buttons(sha, model, guess, labels)]
    return Reply(text=f"which is it? ({why})", blocks=[b.to_dict() for b in blocks], response_type="in_channel")
