#!/usr/bin/env bash
# make test: starts MinIO, Kafka and PostgreSQL if they are not running, runs a test gateway of its own, runs
# pytest against the real services, and stops only what it started.
# Tests never touch what `make run` serves: they use the bucket afterdark-test, topics prefixed "test-",
# the database afterdark_test, a fresh model name per run, and their own gateway on 127.0.0.1:8088.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
export S3_BUCKET=afterdark-test KAFKA_TOPIC_PREFIX=test- MODEL_NAME="t-$(date +%s)-$RANDOM"
export OPENFAAS_URL=http://127.0.0.1:8088 PUBLIC_URL=http://127.0.0.1:8088 GATEWAY_NAME=gateway-test ARCHIVER_NAME=archiver-test FUNCTION_FIRST_PORT=8300
export TEST_IMAGE_SERVER=127.0.0.1:8765 FETCH_ALLOW=127.0.0.1:8765,127.0.0.1:8799
# Slack's file and avatar hosts are the tests' receiver (tests/functions/conftest.py), which serves url_private
# only to the bot token, as files.slack.com does.
export SLACK_FILE_HOSTS=127.0.0.1:8799 SLACK_AVATAR_HOSTS=127.0.0.1:8799
export DATABASE_URL="${DATABASE_URL%/*}/afterdark_test" VOTE_RATE_LIMIT=20 SLACK_ADMINS=T1:UADMIN
# The tests train a small backbone (1200 portraits, 8 epochs: one to two minutes, hold-out 0.82-0.87 by machine), on a dataset of
# their own; the default bootstrap's quality is measured in bench/bootstrap_quality.py.
export TRAIN_DATASET=synthetic-small TRAIN_DATASET_SIZE=1200 TRAIN_BACKBONE_EPOCHS=8
# The stack's trainers refit the head alone (no fine-tuning of the backbone, about 10 s a run here):
# tests/training_job/test_tuning.py tests the fine-tuning itself, and bench/crowd.py measures it.
export TRAIN_TUNE_EPOCHS=0
export PREDICT_RATE_LIMIT=30000         # on, above what the suite sends (tests/unit/edge/test_request_budget.py tests it)
export RENDEZVOUS_DELAYS_MS=2=1200      # v2 of the test model answers 1.2 s late in /predict-rendezvous
export SLACK_FIRST_ANSWER_S=0.5         # ...so Slack gets the first of its two answers before v2 is in
# The review channel's Web API calls go to the tests' receiver on loopback (tests/functions/test_slack.py).
export SLACK_REVIEW_CHANNEL=C-REVIEW SLACK_BOT_TOKEN=xoxb-test SLACK_API_URL=http://127.0.0.1:8799/api/
# A second client with the default scopes (predict, vote: no admin, no delegate), for the authorisation tests.
export API_TOKEN_VIEWER="viewer-$(secret_file api-token)"
export API_TOKENS="$API_TOKENS
viewer $(printf '%s' "$API_TOKEN_VIEWER" | sha256sum | cut -d' ' -f1)"
started=(gateway-test archiver-test)
for svc in minio kafka postgres mlflow; do alive "$svc" || started+=("$svc"); done
RUN_DIR="$RUN/tests/$MODEL_NAME"           # what the run's pytest processes share (tests/conftest.py: once())
cleanup() {
  # a run cut short must not leave the bootstrap training behind (it runs detached, in its own session)
  if [[ -s $RUN_DIR/bootstrap.pid ]]; then kill -- "-$(cat "$RUN_DIR/bootstrap.pid")" 2>/dev/null || true; fi
  if [[ -n ${exclusive:-} ]]; then kill "$exclusive" 2>/dev/null || true; fi      # the exclusive pass, waiting
  rm -rf "$RUN_DIR"
  "$ROOT/dev/stop.sh" "${started[@]}" || true
}
trap cleanup EXIT
"$ROOT/dev/stop.sh" gateway-test archiver-test
# The stack starts while pytest starts and collects (both take half a minute on 2 cores): tests/conftest.py
# waits for the exit status left in STACK_RC before the first test, and stops the run if it is not 0.
mkdir -p "$RUN_DIR"
export STACK_RC="$RUN_DIR/stack.rc"
{ rc=0; "$ROOT/dev/start.sh" minio kafka postgres mlflow archiver gateway || rc=$?; echo "$rc" >"$STACK_RC.tmp"; mv "$STACK_RC.tmp" "$STACK_RC"; } &
starting=$!
export PYTHONPATH="$ROOT"
# Two passes: the suite on TEST_WORKERS processes (default 3 on 2 cores: the worker with the functions'
# tests mostly waits on I/O; tests/conftest.py SCOPES says which tests share one), then the tests marked
# `exclusive`, which stop services or overwrite the control document, alone.
# The exclusive pass starts at once too, and waits, collected, for the shared pass to end (its start costs
# seconds on a busy machine); its report follows the shared pass's.
set +e
AFTERDARK_TEST_PASS=exclusive AFTERDARK_RUN_AFTER="$RUN_DIR/shared.done" "$VENV/bin/python" -m pytest -n 0 "$@" \
  >"$RUN_DIR/exclusive.out" 2>&1 &
exclusive=$!
AFTERDARK_TEST_PASS=shared "$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-3}" "$@"
shared=$?
touch "$RUN_DIR/shared.done"
tail -f -n +1 --pid="$exclusive" "$RUN_DIR/exclusive.out"
wait "$exclusive"
alone=$?
wait "$starting"
set -e
[[ $(cat "$STACK_RC" 2>/dev/null) == 0 ]] || { log "the stack did not start (above)"; exit 1; }
# pytest exit 5 = no tests collected: fine for one pass, a failure for both (never a silent pass).
if (( shared == 5 && alone == 5 )); then log "pytest collected no tests"; exit 1; fi
(( shared == 5 )) && shared=0
(( alone == 5 )) && alone=0
(( shared == 0 )) || exit "$shared"
exit "$alone"
