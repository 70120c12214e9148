"""The vote ledger in PostgreSQL: every acknowledged vote, the consensus it adds up to, and every training run.

    votes.py      Vote (THE vote: its Kafka record is its serialised form, a ledger row is Recorded: it and
                  its Kafka Position); Ledger: idempotent insert of votes (by vote id), the watermark, each
                  principal's latest vote, and the binding of an Idempotency-Key to its request
    consensus.py  decide(): Dawid-Skene consensus per image, voters weighed by estimated reliability, gold
                  images check voters, ties and low posteriors quarantined (pure); of_ledger(): THE
                  consensus of a ledger snapshot, for the trainer, the canary and /models alike
    recorder.py   VoteRecorder: /fix's service, a vote durable (S3, Kafka acknowledged) before its receipt
    limits.py     RateLimiter: votes per principal and per client, across replicas
    gold.py       GoldAnswers: the dataset's images and labels, the known answers that check voters
    split.py      split_of(): train or evaluation, by the image's sha256 (pure)
    voters.py     VoterBoard: each voter's estimated reliability, as the trainer last computed it
    runs.py       TrainingRuns: one row per training run, with its stage, outcome, reason and version
    standing.py   Standing: what became of a voter's votes, and whose votes a version learnt from
    outreach.py   ReceiptBook, QuestionLog: vote receipts and questions to the crowd, each sent once

Example:
    ledger = Ledger(Database(settings.db))
    ledger.record([vote])                                    # a vote id already there is left alone
    snap = ledger.snapshot("engineer")                       # watermark + each principal's latest vote per image
    agreed = decide(snap.latest, min_votes=1)                # accepted / quarantined images

IMPORTANT: the ledger is the history. Kafka carries votes to it; model versions record which watermark and
which consensus they trained on, but nothing is ever looked up from a version to know what was voted.
"""
from layers.ledger.consensus import Consensus, VoterEstimate, decide, of_ledger
from layers.ledger.gold import GoldAnswers
from layers.ledger.runs import TrainingRun, TrainingRuns
from layers.ledger.split import EVALUATION, EVALUATION_FRACTION, TRAIN, split_of
from layers.ledger.voters import VoterBoard
from layers.ledger.votes import VOTE_SOURCES, KeyBinding, LatestVote, Ledger, LedgerSnapshot, Position, Recorded, Vote, request_fingerprint

__all__ = ["Consensus", "VoterEstimate", "decide", "of_ledger", "GoldAnswers", "TrainingRun", "TrainingRuns", "EVALUATION", "EVALUATION_FRACTION",
           "TRAIN", "split_of", "VoterBoard", "KeyBinding", "LatestVote", "Ledger", "LedgerSnapshot", "Position", "Recorded", "Vote", "VOTE_SOURCES",
           "request_fingerprint"]
