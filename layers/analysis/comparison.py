"""`/models compare A B`: two versions side by side, as a table and a chart.

Example:
    compare = Comparison(ops, replayer, consensus=lambda: ledger_consensus(), store=store, links=MediaLinks(...))
    report = compare(1, 3)
    report["a"]["accuracy"], report["replay"]["agreement"], report["chart_url"]

Four kinds of evidence:
  * each version's own metrics from its metadata: hold-out accuracy, accuracy on the evaluation-split votes
    it never trained on (with n and a 95% interval), and accuracy on the voted images it trained on, labelled
    as what it is (DataOps.compare);
  * the honest paired comparison: both versions on every image with a consensus label that NEITHER trained
    on (evaluation split, and votes after their watermarks), each accuracy with its Wilson interval, and the
    discordant pairs with the canary policy's test (layers.analysis.paired);
  * a replay of the recent live traffic (predict-decoy, layers.analysis.replay) by both versions: how often they
    agree, and each one's accuracy on the images people have voted on (the ledger's consensus) - the same
    numbers the canary policy decides on;
  * a matplotlib bar chart of those, stored content-addressed under media/ and linked with a signed,
    expiring URL that Slack can show (the `media` function serves it).
A replay that cannot run (Kafka or the ledger down) is reported as such; the metadata figures still come back.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from layers.analysis.paired import evidence, wilson
from layers.analysis.charts import comparison
from layers.errors import AfterDarkError
from layers.ledger import Consensus
from layers.edge.media import MediaLinks
from layers.registry.dataops import DataOps
from layers.analysis.replay import Replayer, decoy_window_s
from layers.store import BlobStore

log = logging.getLogger("afterdark.comparison")
LIMIT = 1000


class Comparison:
    def __init__(self, ops: DataOps, replayer: Replayer, consensus: Callable[[], Consensus], store: BlobStore,
                 links: MediaLinks) -> None:
        self.ops, self.replayer, self.consensus, self.store, self.links = ops, replayer, consensus, store, links

    def __call__(self, a: int, b: int) -> dict:
        report = self.ops.compare(a, b)
        try:
            agreed = self.consensus()
            report["honest"] = self.honest(a, b, agreed)
            replay = self.replayer.report(self.ops.model, [a, b], agreed.accepted, from_offset=None,
                                          since_ms=int((time.time() - decoy_window_s(self.replayer.settings)) * 1000),
                                          limit=LIMIT)
            report["replay"] = {"images": replay["images"], "labelled": replay["labelled"],
                                "agreement": replay["agreement"],
                                "accuracy": {str(v): replay["versions"][str(v)]["accuracy"] for v in (a, b)}}
        except Exception as err:                    # the metadata figures still answer
            why = err.message if isinstance(err, AfterDarkError) else f"{type(err).__name__}: {err}"
            log.warning("compare v%s v%s: no replay: %s", a, b, why)
            report["replay"] = {"error": why}
        report["chart_url"] = self._chart(a, b, report)
        return report

    def honest(self, a: int, b: int, agreed: Consensus) -> dict:
        """Both versions on the consensus-labelled images neither trained on: b is the "canary" side."""
        model = self.ops.model
        seen = self.ops.versions.trained_fixes(model, a) | self.ops.versions.trained_fixes(model, b)
        labels = {sha: x["label"] for sha, x in agreed.accepted.items() if sha not in seen}
        answers = self.replayer.answers(model, [a, b], sorted(labels))
        labels = {sha: label for sha, label in labels.items() if sha in answers[a]}
        right = {v: sum(answers[v][sha] == label for sha, label in labels.items()) for v in (a, b)}
        n = len(labels)
        ev = evidence((answers[b][sha] == label, answers[a][sha] == label) for sha, label in labels.items())
        return {"images": n, "accuracy": {str(v): round(right[v] / n, 4) if n else None for v in (a, b)},
                "ci95": {str(v): wilson(right[v], n) for v in (a, b)},
                "paired": {**ev.to_json(), "better": f"v{b}", "than": f"v{a}"}}

    def _chart(self, a: int, b: int, report: dict) -> str | None:
        replay = report["replay"]
        series = {f"v{v}": {"hold-out": report[side]["accuracy"], "its training fixes": report[side]["fix_accuracy"],
                            "live traffic, voted": (replay.get("accuracy") or {}).get(str(v))}
                  for v, side in ((a, "a"), (b, "b"))}
        agreement = replay.get("agreement")
        title = (f"{self.ops.model}: v{a} vs v{b}" + (f" (agree on {agreement:.0%} of {replay['images']} live images)"
                                                     if agreement is not None else ""))
        key = MediaLinks.keep(self.store, comparison(series, title))
        try:
            return self.links.url(key)
        except AfterDarkError as err:                # no signing key: the chart is stored, but not linked
            log.warning("compare chart %s not linked: %s", key, err.message)
            return None
