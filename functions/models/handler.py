"""models: DataOps for the model ("AI Monkey"): versions with their metrics, traffic split, canary, mirror,
promote, rollback, history, compare, and asking the trainer to run now.

    GET  /function/models                     the versions (role, weight, accuracy, fix accuracy, parent)
    GET  /function/models/<n>                 one version: metadata and lineage
    GET  /function/models/history             this model's audit log (edits and refused attempts)
    GET  /function/models/voters              (admin) each voter's estimated reliability and votes
    GET  /function/models/compare?a=1&b=3     two versions side by side: metadata, a replay of live traffic
                                              against the votes, and a chart (chart_url: a signed media link)
    POST /function/models/route               {"weights": {"1": 90, "3": 10}}
    POST /function/models/canary              {"version": 3, "percent": 10}
    POST /function/models/mirror              {"version": 3, "on": true}
    POST /function/models/promote             {"version": 3}
    POST /function/models/rollback            (the route before this model's last change)
    POST /function/models/train               (a command record on Kafka; the trainer runs now)
    POST /function/models/auto                {"on": true, "canary_percent": 10, "min_samples": 8, "alpha": 0.05,
                                              "max_samples": 400}
Reading needs a bearer token; editing needs a token with the admin scope (403 otherwise, audited). An edit
may carry `If-Match: <revision>` (from list): if the control document moved on since, 409 and nothing is written.
Slack: /models VERB ... (edits only from the user ids in the admin list, secret slack-admins / SLACK_ADMINS).
"""
from layers.edge.auth import api_principal, slack_principal
from layers.edge.chain import Chain, bearer
from layers.edge.http import json_object, ok
from layers.registry.admin import ModelsAdmin, if_match
from layers.registry.commands import USAGE, from_api, from_text
from layers.registry.dataops import DataOps
from layers.slack import Reply, is_slack
from layers.slack.blocks import compare_message, models_message
from layers.wiring import Wiring

W = Wiring.for_function("models")
OPS = DataOps(W.registry, W.settings.model, refusals=W.limiter(W.settings.auth.refused_edits_per_window))
ADMIN = ModelsAdmin(W.settings, OPS, W.db, W.sink, W.store, W.links)
SLACK = W.slack("/models", USAGE, nargs=(1, 12), response_type="in_channel")
API = Chain(bearer(W.tokens))        # reading needs a token; what an edit needs, commands.run decides


def api(req, caller) -> dict:
    body = json_object(req.body) if req.method == "POST" else {}
    cmd = from_api(req.method, req.path, body, dict(req.query))
    return ok(ADMIN.execute(cmd, api_principal(caller.client), "admin" in caller.client.scopes, if_match(req.headers)))


def slash_models(cmd) -> Reply:
    command = from_text(cmd.text)
    result = ADMIN.execute(command, slack_principal(cmd.team_id, cmd.user_id), cmd.admin, None)
    return compare_message(OPS.model, result) if command.verb == "compare" else models_message(OPS.model, cmd.text, result)


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_models)
    return API(event, api)
