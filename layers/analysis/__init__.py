"""Analysis: judging versions against each other on honestly labelled data, and showing it.

    paired.py      the paired sequential test the canary policy decides with (discordant pairs, mSPRT), and
                   Wilson intervals for the accuracies it reports (pure)
    canary.py      the canary policy's pure parts: AutoPromotion (the policy value in the control document),
                   which version becomes the canary, supersession, and the decision (judge)
    replay.py      replaying archived live traffic (predict-decoy, read through layers.events) by any versions,
                   incrementally (DecoyTail); the one window setting (decoy_window_s)
    comparison.py  `/models compare A B`: both versions on honest images and replayed traffic, with a chart
    charts.py      matplotlib PNGs: a version's training report and a comparison

paired and canary import nothing of the project's but each other (the registry's control document holds the
policy value); replay and comparison read the registry, the store, Kafka and serving's loader, and serve the
trainer's canary analyst and /models. Nothing here imports matching or Slack.
"""
