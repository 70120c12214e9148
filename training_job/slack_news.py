"""What the trainer tells Slack (with the bot token; off without one):

  * vote receipts: when a version that learnt from your votes becomes live (the canary policy promoted it,
    or an admin did), each Slack voter whose vote it trained on, with the consensus label, gets one message
    (chat.postMessage to the user): each image, what the version before it said, what the new one says. Once
    per voter and promoted version (layers.ledger.standing.ReceiptBook), however often the trainer restarts
    or looks; a receipt Slack did not take is tried again at the next look.
  * the canary policy's decisions (promoted, rolled back), with their evidence, in the review channel.
  * questions to the crowd, in the review channel with vote buttons: images the consensus quarantined (a tie,
    or a posterior too low to train on) and live-traffic images on which the live version and the canary
    disagree. At most SLACK_QUESTIONS_PER_HOUR an hour, an image at most once a day
    (layers.ledger.outreach.QuestionLog), looked at every minute.

Example (the learner, after each canary step):
    news = SlackNews(settings, registry, ledger, db, replayer)
    news.canary_step(model, step)      # saves the evidence for the App Home; posts a decision
    news.receipts(model)               # when the live version changed: the receipts
    news.questions(model, learner.consensus, disagreements)     # at most once a minute
"""
from __future__ import annotations

import time
from typing import Callable

from slack_sdk.errors import SlackApiError

from layers.config import Settings
from layers.edge.media import MediaLinks
from layers.errors import AfterDarkError
from layers.ledger import Consensus, Ledger
from layers.ledger.outreach import QuestionLog, ReceiptBook
from layers.ledger.standing import Standing
from layers.registry import Registry, image_key
from layers.registry.canary_state import CanaryBoard
from layers.slack.blocks import decision_message, question_message, receipt_message
from layers.slack.web import web_client

MAX_ROWS = 10                  # images listed per receipt
QUESTIONS_EVERY_S = 60.0       # how often the crowd may be asked something


class SlackNews:
    def __init__(self, settings: Settings, registry: Registry, ledger: Ledger, db, replayer) -> None:
        self.settings, self.registry, self.replayer = settings, registry, replayer
        self.client = web_client(settings.slack)
        self.standing, self.book, self.canaries = Standing(ledger, registry), ReceiptBook(db), CanaryBoard(db)
        self.links = MediaLinks(settings.media)
        self._live: dict[str, int] = {}          # model -> the live version whose receipts were sent
        self.questions_log = QuestionLog(db)
        self._asked_at = 0.0

    def canary_step(self, model: str, step) -> None:
        """Keep the canary's evidence for the App Home, and post a decision to the review channel."""
        judging = step.action in ("canary", "waiting")
        self.canaries.save(model, canary=step.version if judging else None,
                           live=step.version if step.action == "promoted" else step.live,
                           evidence={"action": step.action, "version": step.version, "reason": step.reason,
                                     **step.evidence})
        if step.action in ("promoted", "rolled-back") and self.client and self.settings.slack.review_channel:
            reply = decision_message(model, step.action, step.version, step.live, step.reason, step.evidence)
            try:
                self.client.chat_postMessage(channel=self.settings.slack.review_channel, text=reply.text,
                                             blocks=reply.blocks)
            except (SlackApiError, OSError) as err:
                print(f"[slack] the decision on v{step.version} was not posted: {err}", flush=True)

    def receipts(self, model: str) -> int:
        """When the live version is new to this look: a receipt to each of its Slack teachers. Returns how many
        were sent."""
        live = self.registry.live_version(model)
        if live is None or self._live.get(model) == live or self.client is None or not self.settings.slack.receipts:
            return 0
        teachers = {p: shas for p, shas in self.standing.teachers(model, live).items() if p.startswith("slack:")}
        old = self.registry.metadata(model, live).parent
        images = sorted({sha for shas in teachers.values() for sha in shas[:MAX_ROWS]})
        answers = self.replayer.answers(model, [v for v in (old, live) if v is not None], images) if images else {}
        sent = 0
        for principal, shas in sorted(teachers.items()):
            if not self.book.claim(model, live, principal, len(shas)):
                continue                           # told already (this promotion, or another trainer)
            rows = [(sha, self._label(model, principal, sha), answers.get(old, {}).get(sha), answers.get(live, {}).get(sha),
                     self._link(sha)) for sha in shas[:MAX_ROWS]]
            reply = receipt_message(model, live, old, rows)
            try:
                self.client.chat_postMessage(channel=principal.rsplit(":", 1)[-1], text=reply.text, blocks=reply.blocks)
                sent += 1
            except (SlackApiError, OSError) as err:
                self.book.release(model, live, principal)
                print(f"[slack] receipt to {principal} for v{live} not sent ({err}); trying again later", flush=True)
                return sent                        # look again next time, for everyone not told yet
        self._live[model] = live
        if sent:
            print(f"[slack] v{live} is live: {sent} vote receipts sent", flush=True)
        return sent

    def questions(self, model: str, consensus: Callable[[], Consensus], disagreements: list[str],
                  now: float | None = None) -> int:
        """Ask the review channel about the most useful images, within the budget (`consensus` is read only
        when a question may be asked). Returns how many."""
        slack, now = self.settings.slack, time.time() if now is None else now
        if self.client is None or not slack.review_channel or slack.questions_per_hour <= 0 \
                or now - self._asked_at < QUESTIONS_EVERY_S:
            return 0
        self._asked_at = now
        quarantined = sorted(consensus().quarantined.items(), key=lambda kv: -int(kv[1].get("votes") or 0))
        candidates = [(sha, f"the votes are {q.get('reason', 'undecided')}", q.get("label")) for sha, q in quarantined]
        candidates += [(sha, "the live version and the canary disagree on it", None) for sha in disagreements]
        asked = 0
        for sha, why, guess in candidates[:slack.questions_per_hour]:
            if not self.questions_log.claim(model, sha, why, slack.questions_per_hour):
                continue                           # over the hour's budget, or asked today already
            reply = question_message(model, sha, why, guess or self.settings.labels[0], self.settings.labels,
                                     self._link(sha))
            try:
                self.client.chat_postMessage(channel=slack.review_channel, text=reply.text, blocks=reply.blocks)
                asked += 1
            except (SlackApiError, OSError) as err:
                self.questions_log.release(model, sha)
                print(f"[slack] question about {sha[:12]} not posted: {err}", flush=True)
                break
        return asked

    def _label(self, model: str, principal: str, sha: str) -> str:
        return self.standing.ledger.tally_by_principal(model, sha).get(principal, "?")

    def _link(self, sha: str) -> str | None:
        try:
            return self.links.url(image_key(sha))
        except AfterDarkError:                     # no media key here: the receipt goes without links
            return None
