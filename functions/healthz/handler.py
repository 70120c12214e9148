"""healthz: dependency versions and reachability of S3 and Kafka. 200 when both answer, else 503.
Slack: /healthz (signed) answers the same, as a short ephemeral message."""
from layers.config import Settings
from layers.health import health_report
from layers.slack import Reply, SlackFront, ephemeral, is_slack

SETTINGS = Settings.from_env()
SLACK = SlackFront.from_settings(SETTINGS, "/healthz", "/healthz", nargs=(0, 0), response_type="ephemeral")


def slash_health(cmd) -> Reply:
    r = health_report(SETTINGS)
    mark = lambda ok: ":white_check_mark:" if ok else ":x:"
    return ephemeral(f"{mark(r['s3']['ok'])} S3 {r['s3']['endpoint']}\n{mark(r['kafka']['ok'])} Kafka {r['kafka']['bootstrap']}",
                     "Slack After Dark health")


def handle(event, context):
    if is_slack(event):
        return SLACK.handle(event, slash_health)
    report = health_report(SETTINGS)
    return {"statusCode": 200 if report["ok"] else 503, "body": report}
