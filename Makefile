# Slack After Dark: the two commands are `make run` and `make test`. Everything installs into ~/.cache/afterdark.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export AFTERDARK_CACHE ?= $(HOME)/.cache/afterdark
PY := $(AFTERDARK_CACHE)/venv/bin/python

.PHONY: help install up run test unit down status bench demo

help:
	@echo "make install  install everything (make run skips faas-cli, which only the tests and deploys need)"
	@echo "make run    install what is missing, start MinIO, Kafka and the functions, publish the first models, print how to try it"
	@echo "make test   install what is missing, start the services, run every test, stop what it started"
	@echo "make unit   the fast tier only: in-memory doubles, no services (seconds; make test runs it too)"
	@echo "make down   stop everything that was started (by recorded pid)"
	@echo "make demo   the learning loop, live: votes -> a new version -> canary -> promoted -> a changed answer"

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
