"""healthz: {"status": "up"|"down"} for anyone (200 / 503). With `Authorization: Bearer <token>`, the report:
dependency versions and reachability of S3, Kafka and PostgreSQL. Slack: /healthz (signed) answers the report,
as a short ephemeral message."""
from layers.edge.health import health_report
from layers.edge.http import up_or_down
from layers.slack import Reply, ephemeral, is_slack
from layers.wiring import Wiring

W = Wiring.for_function("healthz")
SLACK = W.slack("/healthz", "/healthz", nargs=(0, 0), response_type="ephemeral")


def slash_health(cmd) -> Reply:
    r = health_report(W.settings, W.db)
    mark = lambda ok: ":white_check_mark:" if ok else ":x:"
    return ephemeral(f"{mark(r['s3']['ok'])} S3 {r['s3']['endpoint']}\n{mark(r['kafka']['ok'])} Kafka {r['kafka']['bootstrap']}"
                     f"\n{mark(r['postgres']['ok'])} PostgreSQL {r['postgres']['database']}", "Slack After Dark health")


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_health)
    report = health_report(W.settings, W.db)
    if W.tokens.identify(event.headers.get("Authorization")) is None:
        return up_or_down(report["ok"])
    return {"statusCode": 200 if report["ok"] else 503, "body": report}
