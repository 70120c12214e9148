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
import json
import logging
import os

from layers.edge.auth import ApiTokens, api_principal, slack_principal
from layers.analysis.comparison import Comparison
from layers.config import Settings
from layers.db import Database
from layers.errors import AfterDarkError, BadInput
from layers.events import CommandRecord, EventSink, now_ms
from layers.ledger.limits import RateLimiter
from layers.slack.replay_guard import ReplayGuard
from layers.edge.http import json_object, ok, respond
from layers.ledger import GoldAnswers, Ledger, VoterBoard, decide
from layers.edge.media import MediaLinks
from layers.registry import AuditLog, Registry, artifact_key
from layers.registry.commands import USAGE, from_api, from_text, run, table
from layers.registry.dataops import DataOps
from layers.analysis.replay import Replayer
from layers.slack import Reply, SlackFront, is_slack
from layers.slack.blocks import compare_message
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SLACK_ROWS = 20
SETTINGS = Settings.from_env()
TOKENS = ApiTokens.parse(SETTINGS.auth.api_tokens)
STORE = BlobStore(SETTINGS.s3)
DB = Database(SETTINGS.db)
OPS = DataOps(Registry(STORE, AuditLog(DB)), SETTINGS.model,
              refusals=RateLimiter(DB, SETTINGS.auth.refused_edits_per_window, SETTINGS.auth.vote_window_s))
SINK = EventSink(SETTINGS.kafka, client_id="models")
LINKS = MediaLinks(SETTINGS.media)
GOLD = GoldAnswers(STORE)


def consensus():
    """The ledger's consensus, with the live version's dataset as gold, as the trainer computes it."""
    live = OPS.route().live
    dataset = OPS.metadata(live).data.get("dataset") if live is not None else None
    return decide(Ledger(DB).snapshot(SETTINGS.model).latest, known=GOLD.answers(dataset) if dataset else {})


COMPARE = Comparison(OPS, Replayer(SETTINGS, STORE), consensus, STORE, LINKS)
SLACK = SlackFront.from_settings(SETTINGS, "/models", USAGE, nargs=(1, 12), response_type="in_channel",
                                 replay_guard=ReplayGuard(DB))


def execute(cmd, actor: str, admin: bool, revision: int | None) -> dict:
    result = run(OPS, cmd, actor=actor, admin=admin, revision=revision, request_training=request_training,
                 compare=COMPARE, voters=lambda: VoterBoard(DB).list(SETTINGS.model))
    if cmd.verb == "show" and "report.png" in result.get("artifacts", {}):
        try:                                       # the training report, through a signed media link
            result["report_url"] = LINKS.url(artifact_key(OPS.model, result["version"], "report.png"))
        except AfterDarkError:
            result["report_url"] = None
    return result


def request_training(actor: str) -> None:
    SINK.send(SETTINGS.kafka.topics.commands, CommandRecord(command="train", model=SETTINGS.model, actor=actor,
                                                             created_at_ms=now_ms()), key=SETTINGS.model)


def if_match(event) -> int | None:
    value = (event.headers.get("If-Match") or "").strip().strip('"')
    if not value:
        return None
    if not value.isdigit():
        raise BadInput("If-Match takes the control document's revision (a number, from GET /function/models)")
    return int(value)


def api(event) -> dict:
    client = TOKENS.authenticate(event.headers.get("Authorization"))
    body = json_object(event.body) if event.method == "POST" else {}
    cmd = from_api(event.method, event.path, body, dict(event.query))
    return ok(execute(cmd, api_principal(client), "admin" in client.scopes, if_match(event)))


def slash_models(cmd) -> Reply:
    command = from_text(cmd.text)
    result = execute(command, slack_principal(cmd.team_id, cmd.user_id), cmd.admin, None)
    if command.verb == "compare":
        return compare_message(OPS.model, result)
    if "versions" in result:
        rows = result["versions"][-SLACK_ROWS:]             # a section holds 3000 characters: the newest rows
        older = len(result["versions"]) - len(rows)
        text = (f"*{OPS.model}*, control revision {result['revision']}\n```{table(rows)}```"
                + (f"\n_{older} older versions not shown (`/models show N`)_" if older else ""))
    else:
        text = f"```{json.dumps(result, indent=1, sort_keys=True)[:2800]}```"
    return Reply(text=f"{OPS.model}: {cmd.text}", response_type="in_channel",
                 blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_models)
    return respond(lambda: api(event))
