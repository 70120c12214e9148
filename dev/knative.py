#!/usr/bin/env python3
"""Knative Serving manifests from stack.yml: one `serving.knative.dev/v1` Service per function, running the
same image as OpenFaaS does (docs/deploy.md, "Knative").

    python dev/knative.py [--stack stack.yml] [--namespace afterdark] > knative.yaml     # make knative

What carries over, field by field:
  environment        -> the container's env (faas-cli's envsubst rules, as the local gateway reads it)
  secrets            -> one projected volume at /var/openfaas/secrets/<name>, where layers.config reads them
  limits, requests   -> resources (memory, cpu)
  com.openfaas.scale.min / max / target / type  -> autoscaling.knative.dev/min-scale / max-scale / target /
                        metric (rps stays rps; anything else becomes concurrency, Knative's default)
  exec_timeout       -> timeoutSeconds
  health path        -> readiness and liveness probes (the watchdog's /_/health)
The image's own watchdog listens on 8080, which is Knative's default container port.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import ROOT, load_stack  # noqa: E402

SECRETS_DIR = "/var/openfaas/secrets"
WATCHDOG_PORT = 8080


def seconds(value: str | None, default: int) -> int:
    """"20s", "2m" or "30" as whole seconds."""
    m = re.fullmatch(r"(\d+)(s|m)?", str(value or ""))
    if not m:
        return default
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def service(name: str, fn: dict, namespace: str) -> dict:
    labels = fn.get("labels") or {}
    env = {k: "" if v is None else str(v) for k, v in (fn.get("environment") or {}).items()}
    scale = {"autoscaling.knative.dev/min-scale": labels.get("com.openfaas.scale.min", "1"),
             "autoscaling.knative.dev/max-scale": labels.get("com.openfaas.scale.max", "1")}
    if "com.openfaas.scale.target" in labels:
        scale["autoscaling.knative.dev/target"] = str(labels["com.openfaas.scale.target"])
        scale["autoscaling.knative.dev/metric"] = "rps" if labels.get("com.openfaas.scale.type") == "rps" else "concurrency"
    health = (fn.get("annotations") or {}).get("com.openfaas.health.http.path", "/_/health")
    probe = {"httpGet": {"path": health, "port": WATCHDOG_PORT}, "periodSeconds": 5}   # Knative: = containerPort
    container: dict = {
        "name": name,
        "image": fn["image"],
        "ports": [{"containerPort": WATCHDOG_PORT}],
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": {k: dict(fn[k]) for k in ("limits", "requests") if fn.get(k)},
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
    }
    spec: dict = {"containers": [container],
                  "timeoutSeconds": seconds(env.get("exec_timeout"), 30),
                  "containerConcurrency": 0}
    if fn.get("secrets"):
        container["volumeMounts"] = [{"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True}]
        spec["volumes"] = [{"name": "secrets", "projected": {"sources": [
            {"secret": {"name": s, "items": [{"key": s, "path": s}]}} for s in fn["secrets"]]}}]
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "slack-after-dark"}},
            "spec": {"template": {"metadata": {"annotations": scale}, "spec": spec}}}


def manifests(stack_path: Path, namespace: str, env: dict[str, str]) -> list[dict]:
    stack = load_stack(stack_path, env)
    return [service(name, fn, namespace) for name, fn in sorted((stack.get("functions") or {}).items())]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", default=str(ROOT / "stack.yml"))
    ap.add_argument("--namespace", default="afterdark")
    args = ap.parse_args()
    # only what a deploy sets (REGISTRY, TAG, endpoints); the local stack's own variables are not a deploy's
    env = {k: v for k, v in os.environ.items() if k in ("REGISTRY", "TAG")}
    print("# Generated from stack.yml by dev/knative.py: Knative Serving Services for the same images.")
    yaml.safe_dump_all(manifests(Path(args.stack), args.namespace, env), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
