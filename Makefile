# Slack After Dark: the two commands are `make run` and `make test`. Everything installs into ~/.cache/afterdark.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export AFTERDARK_CACHE ?= $(HOME)/.cache/afterdark
PY := $(AFTERDARK_CACHE)/venv/bin/python

.PHONY: help install up run test unit down status bench demo images test-containers knative

help:
	@echo "make install  install everything (make run skips faas-cli, which only the tests and deploys need)"
	@echo "make run    install what is missing, start MinIO, Kafka and the functions, publish the first models, print how to try it"
	@echo "make test   install what is missing, start the services, run every test, stop what it started"
	@echo "make unit   the fast tier only: in-memory doubles, no services (seconds; make test runs it too)"
	@echo "make down   stop everything that was started (by recorded pid)"
	@echo "make demo   the learning loop, live: votes -> a new version -> canary -> promoted -> a changed answer"
	@echo "make images every function's image and the trainer's, built here (Docker from Debian, a debootstrap base)"
	@echo "make test-containers  make images, then the functions' and Slack's tests against the images (AFTERDARK_RUNTIME=containers)"
	@echo "make knative  Knative Serving Services for the same images, from stack.yml (to stdout)"

install:
	@dev/install.sh

up:
	@dev/install.sh python go kafka
	@dev/start.sh

run: up
	@dev/run.sh

test: install
	@dev/test.sh $(PYTEST_ARGS)

unit:
	@PYTHONPATH=. $(PY) -m pytest -q tests/unit

down:
	@dev/stop.sh

status:
	@dev/status.sh

demo: run
	@PYTHONPATH=. $(PY) dev/demo_loop.py

bench: run
	@PYTHONPATH=. $(PY) bench/predict_latency.py

images: install
	@dev/images.sh

# The functions' contract, /predict (hot reload included), /fix, Slack and the images themselves, with every
# function running as its image under the gateway (the rest of the suite runs them as processes: make test).
CONTAINER_TESTS := tests/containers tests/functions/test_predict.py tests/functions/test_fix.py \
	tests/functions/test_slack.py tests/functions/test_slack_app.py tests/functions/test_openapi.py \
	tests/stack/test_gateway.py::test_production_healthz_function_reaches_s3_kafka_and_postgres
test-containers: images
	@AFTERDARK_RUNTIME=containers dev/test.sh $(CONTAINER_TESTS) $(PYTEST_ARGS)

knative:
	@PYTHONPATH=. $(PY) dev/knative.py
