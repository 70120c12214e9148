"""The AI Monkey app's Home tab (Events API `app_home_opened` -> views.publish): the live version and its
honest accuracy, the canary and its evidence so far, the caller's own votes and what became of them, and the
voters by estimated reliability.

Example:
    home = AppHome(registry, standing, voters, canaries, model="engineer")
    view = home.view("slack:T1:U1")         # a `home` view, for views.publish(user_id=..., view=view)

Honest accuracy: the hold-out split, images no version trains on, with its 95% Wilson interval; never the
accuracy on the votes a version learnt from.
"""
from __future__ import annotations

from layers.analysis.paired import wilson
from layers.errors import AfterDarkError
from layers.ledger import VoterBoard
from layers.ledger.standing import Standing, VoteStanding
from layers.registry import Registry
from layers.registry.canary_state import CanaryBoard

MARKS = {"learnt": ":mortar_board:", "held out": ":test_tube:", "outvoted": ":busts_in_silhouette:",
         "quarantined": ":hourglass:", "waiting": ":hourglass_flowing_sand:", "new": ":new:"}


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


class AppHome:
    def __init__(self, registry: Registry, standing: Standing, voters: VoterBoard, canaries: CanaryBoard,
                 model: str) -> None:
        self.registry, self.standing, self.voters, self.canaries, self.model = registry, standing, voters, canaries, model

    def live_text(self) -> str:
        live = self.registry.live_version(self.model)
        if live is None:
            return f"*Model `{self.model}`*: no live version yet."
        hold = self.registry.metadata(self.model, live).metrics.get("holdout") or {}
        n, acc = int(hold.get("n") or 0), hold.get("accuracy")
        if not n or acc is None:
            return f"*Model `{self.model}` v{live}* is live (no hold-out measurement)."
        lo, hi = wilson(round(acc * n), n) or (acc, acc)
        return (f"*Model `{self.model}` v{live}* is live: *{acc:.1%}* right on {n} hold-out images it never "
                f"trained on (95% interval {lo:.1%}–{hi:.1%}).")

    def canary_text(self) -> str:
        state = self.canaries.get(self.model)
        if not state or state.get("canary") is None:
            return ":bird: No canary is being judged right now." + (
                f" Last decision: {state['evidence'].get('action')} v{state['live']} "
                f"({state['evidence'].get('reason', '')})." if state and state.get("evidence", {}).get("action") else "")
        ev = state["evidence"]
        return (f":bird: *Canary v{state['canary']}* against live v{state['live']}: {ev.get('n', 0)} honest images "
                f"so far (neither version trained on them); it alone got {ev.get('canary_only', 0)} right, live "
                f"alone {ev.get('live_only', 0)}; likelihood ratio for better {ev.get('lr_better', 1)}, "
                f"p = {ev.get('p_better', 1)}. {ev.get('reason', '')}")

    def votes_blocks(self, principal: str) -> list[dict]:
        mine: list[VoteStanding] = self.standing.of_voter(self.model, principal)
        if not mine:
            return [section("You have not voted yet. Use the *Correct this image* shortcut on any shared "
                            "photo, `/fix IMAGE_URL CLASS`, or the buttons under an unsure answer.")]
        lines = [f"{MARKS.get(v.state, '')} `{v.image_sha256[:10]}…` you said *{v.label}*: {v.state}, {v.detail}"
                 for v in mine]
        return [section("*Your latest votes*\n" + "\n".join(lines))]

    def leaderboard_text(self, limit: int = 5) -> str:
        rows = self.voters.list(self.model, limit=limit)
        if not rows:
            return "*Voters*: no estimate yet (the trainer computes them with each consensus)."
        who = lambda p: f"<@{p.split(':')[-1]}>" if p.startswith("slack:") else f"`{p}`"
        return "*Most reliable voters* (estimated accuracy, votes)\n" + "\n".join(
            f"{i}. {who(r['principal'])}: {r['accuracy']:.0%} over {r['votes']} votes" for i, r in enumerate(rows, 1))

    def view(self, principal: str) -> dict:
        blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": "AI Monkey"}}]
        for part in (self.live_text, self.canary_text):
            try:
                blocks.append(section(part()))
            except AfterDarkError as err:          # one part unavailable: the rest still shows
                blocks.append(section(f":warning: {err.message}"))
        blocks.append({"type": "divider"})
        try:
            blocks += self.votes_blocks(principal)
        except AfterDarkError as err:
            blocks.append(section(f":warning: your votes cannot be shown now: {err.message}"))
        blocks.append({"type": "divider"})
        try:
            blocks.append(section(self.leaderboard_text()))
        except AfterDarkError as err:
            blocks.append(section(f":warning: {err.message}"))
        return {"type": "home", "blocks": blocks}
