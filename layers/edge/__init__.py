"""The edge: everything between a request and the service it asks for, the same for every function.

    request.py   Request: the one normalised request (method, path, query, headers, body, content type),
                 built once by the template's index.py
    chain.py     Chain and its middleware for the JSON API: methods, bearer (a token's client and scope),
                 budget (a client's requests a minute); Slack requests take the Slack front's own checks
    auth.py      API tokens and their scopes, and the namespaced principals votes are recorded under
    budget.py    RequestBudget: /predict's per-client token bucket, in this replica
    intake.py    what a request may carry about an image, and SSRF-safe URL fetching
    http.py      the JSON answers, and the one mapping of the exception tree to statuses
    media.py     signed, expiring links to stored images
    health.py    what a function reports about itself and its dependencies

May import the core (config, errors, logs, metrics) and the seams (store, db); never a service package
(serving, ledger, registry, matching, analysis) nor the Slack adapter, which sit behind it.
"""
