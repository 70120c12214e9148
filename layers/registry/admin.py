"""/models' service: the DataOps verbs (layers.registry.commands) with what they need around them: the
honest comparison (layers.analysis.comparison) on the ledger's consensus, the voters' board, a `train`
command to the trainer, and signed links to training reports. It composes the ledger and analysis, so the
package's __init__ does not import it.

Example:
    admin = ModelsAdmin(settings, ops, db, sink, store, links)
    admin.execute(from_text("promote 3"), actor="slack:T1:U1", admin=True, revision=None)
"""
from __future__ import annotations

from layers.analysis.comparison import Comparison
from layers.analysis.replay import Replayer
from layers.config import Settings
from layers.db import Database
from layers.edge.media import MediaLinks
from layers.errors import AfterDarkError, BadInput
from layers.events import CommandRecord, EventSink, now_ms
from layers.ledger import Consensus, GoldAnswers, Ledger, VoterBoard, of_ledger
from layers.registry.commands import Command, run
from layers.registry.dataops import DataOps
from layers.registry.keys import artifact_key
from layers.store import BlobStore


class ModelsAdmin:
    def __init__(self, settings: Settings, ops: DataOps, db: Database, sink: EventSink, store: BlobStore,
                 links: MediaLinks) -> None:
        self.settings, self.ops, self.db, self.sink, self.links = settings, ops, db, sink, links
        self.gold = GoldAnswers(store)
        self.compare = Comparison(ops, Replayer(settings, store), self.consensus, store, links)

    def consensus(self) -> Consensus:
        """The ledger's consensus, with the live version's dataset as gold, as the trainer computes it."""
        live = self.ops.route().live
        dataset = self.ops.metadata(live).data.get("dataset") if live is not None else None
        return of_ledger(Ledger(self.db).snapshot(self.settings.model), self.gold.answers(dataset) if dataset else {})

    def execute(self, cmd: Command, actor: str, admin: bool, revision: int | None) -> dict:
        result = run(self.ops, cmd, actor=actor, admin=admin, revision=revision, request_training=self.request_training,
                     compare=self.compare, voters=lambda: VoterBoard(self.db).list(self.settings.model))
        if cmd.verb == "show" and "report.png" in result.get("artifacts", {}):
            try:                                       # the training report, through a signed media link
                result["report_url"] = self.links.url(artifact_key(self.ops.model, result["version"], "report.png"))
            except AfterDarkError:
                result["report_url"] = None
        return result

    def request_training(self, actor: str) -> None:
        model = self.settings.model
        self.sink.send(self.settings.kafka.topics.commands,
                       CommandRecord(command="train", model=model, actor=actor, created_at_ms=now_ms()), key=model)


def if_match(headers) -> int | None:
    """The control document's revision an edit is conditional on (If-Match), or None."""
    value = (headers.get("If-Match") or "").strip().strip('"')
    if not value:
        return None
    if not value.isdigit():
        raise BadInput("If-Match takes the control document's revision (a number, from GET /function/models)")
    return int(value)
