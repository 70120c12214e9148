"""healthz: dependency versions and reachability of S3 and Kafka. 200 when both answer, else 503."""
from layers.config import Settings
from layers.health import health_report

SETTINGS = Settings.from_env()


def handle(event, context):
    report = health_report(SETTINGS)
    return {"statusCode": 200 if report["ok"] else 503, "body": report}
