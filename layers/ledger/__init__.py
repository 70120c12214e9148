"""The vote ledger in PostgreSQL: every acknowledged vote, the consensus it adds up to, and every training run.

    votes.py      Ledger: idempotent insert of votes (by vote id), the watermark, each principal's latest vote
    consensus.py  decide(): strict majority per image, ties quarantined, a minimum number of votes (pure)
    runs.py       TrainingRuns: one row per training run, with its stage, outcome, reason and version

Example:
    ledger = Ledger(Database(settings.db))
    ledger.record([vote])                                    # a vote id already there is left alone
    snap = ledger.snapshot("engineer")                       # watermark + each principal's latest vote per image
    agreed = decide(snap.latest, min_votes=1)                # accepted / quarantined images

IMPORTANT: the ledger is the history. Kafka carries votes to it; model versions record which watermark and
which consensus they trained on, but nothing is ever looked up from a version to know what was voted.
"""
from layers.ledger.consensus import Consensus, decide
from layers.ledger.runs import TrainingRun, TrainingRuns
from layers.ledger.votes import LatestVote, Ledger, LedgerSnapshot, Vote

__all__ = ["Consensus", "decide", "TrainingRun", "TrainingRuns", "LatestVote", "Ledger", "LedgerSnapshot", "Vote"]
