"""What a function reports about its dependencies (layers.edge.health): the real services answer; closed
loopback ports do not, and say so without raising."""
import dataclasses

from layers.config import DbSettings, KafkaSettings, S3Settings, Settings
from layers.db import Database
from layers.edge.health import health_report


def test_the_running_services_are_reported_up(settings, db):
    report = health_report(settings, db)
    assert report["ok"], report
    assert all(report[name]["ok"] and report[name]["latency_ms"] >= 0 for name in ("s3", "kafka", "postgres"))
    assert report["versions"]["boto3"] and report["s3"]["bucket"] == settings.s3.bucket


def test_services_that_are_down_are_reported_down_with_the_reason():
    down = dataclasses.replace(Settings(), s3=S3Settings(endpoint="http://127.0.0.1:1"),
                               kafka=KafkaSettings(bootstrap="127.0.0.1:1"))
    report = health_report(down, Database(DbSettings(url="postgresql://u:p@127.0.0.1:1/none", wait_s=1.0,
                                                      connect_timeout_s=1)))
    assert not report["ok"]
    assert all(not report[name]["ok"] and report[name]["error"] for name in ("s3", "kafka", "postgres")), report
