"""The dating app's room: profiles in PostgreSQL, the pure matching rules, and the service the `afterdark`
function calls.

    rules.py      Profile, Match, affinity, candidates_for, next_match, explain (pure)
    sweeper.py    PhotoSweeper: deletes profile photos no profile references, once an hour old
    profiles.py   Profiles: the `profiles` and `matches_shown` tables
    app.py        AfterDark: signup, me, match, confirm, delete
"""
