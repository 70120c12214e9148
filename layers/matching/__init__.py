"""The dating app's room: profiles in PostgreSQL, the pure matching rules, and the service the `afterdark`
function calls.

    rules.py      Profile, Match, affinity, candidates_for, next_match, explain (pure)
    sweeper.py    PhotoSweeper: deletes profile photos no profile references, once an hour old
    profiles.py   Profiles: the `profiles` and `matches_shown` tables
    app.py        AfterDark: signup, me, match, confirm, delete; the JSON views of profiles and matches
    verbs.py      the JSON verbs: the methods each answers, and each one's service call (as registry.commands)

May import the core, the seams, edge (media links), ledger (votes), registry and serving (the ensemble).
"""
