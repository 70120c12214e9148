"""Analysis: judging versions against each other on honestly labelled data. Pure functions only.

    paired.py   the paired sequential test the canary policy decides with (discordant pairs, mSPRT), and
                Wilson intervals for the accuracies it reports

May be imported by anything (functions, the trainer, bench); imports nothing of the project's.
"""
