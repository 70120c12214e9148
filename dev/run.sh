#!/usr/bin/env bash
# make run: after dev/start.sh, publish the first model versions if there are none, start the online trainer,
# and print how to try everything.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
export PYTHONPATH="$ROOT"
MODEL="${MODEL_NAME:-engineer}"

versions() { "$VENV/bin/python" -c "
from layers.config import Settings; from layers.store import BlobStore; from layers.registry import Registry
print(' '.join(map(str, Registry(BlobStore(Settings.from_env().s3)).versions('$MODEL'))))"; }

fresh=0
if [[ -z "$(versions)" ]]; then
  fresh=1
  blog="$LOGS/bootstrap-$MODEL.log"
  log "no versions of '$MODEL' yet: bootstrapping v1 and v2 (synthetic portraits, backbone trained here; ~3.5 min on 2 cores)"
  log "progress below; everything (library warnings included) goes to $blog"
  "$VENV/bin/python" -m training_job bootstrap --model "$MODEL" >"$blog" 2>&1 &
  bpid=$!
  # only the bootstrap's own lines reach the terminal (each epoch, each head, each publication)
  tail -n +1 -f --pid="$bpid" "$blog" | grep --line-buffered -E '^\[(bootstrap|train|tracking)\]' >&2 &
  if ! wait "$bpid"; then
    tail -n 25 "$blog" >&2
    fail "bootstrap failed; the whole log is $blog (rerun: PYTHONPATH=. $VENV/bin/python -m training_job bootstrap --model $MODEL)"
  fi
  sleep 0.5                                             # let the filter print the last lines
fi
if ! alive trainer; then
  log "starting the online trainer (consumes 'fixes', group 'trainer')"
  spawn_job trainer consume --model "$MODEL" --metrics-port "${TRAINER_METRICS_PORT:-9464}"
fi

# sample portraits to try with curl, chosen by the generator's own cues: a clear one of each class, and an
# ambiguous one (one cue of each class) for the unconfident answer and /fix
SAMPLES="$AFTERDARK_CACHE/samples"
[[ -s "$SAMPLES/ambiguous.jpg" ]] || "$VENV/bin/python" -m portraits.synth showcase "$SAMPLES" | sed 's/^/  [samples] /' >&2

"$VENV/bin/python" dev/seed_profiles.py >&2 || log "could not seed the demo profiles (see $LOGS/gateway.log)"

if ! alive samples; then
  spawn samples "$VENV/bin/python" -m http.server --bind "${SAMPLES_HOST%:*}" --directory "$SAMPLES" "${SAMPLES_HOST##*:}"
fi

cat <<MSG

  Slack After Dark is running (all on loopback):
    MinIO (S3)        $S3_ENDPOINT   bucket '$S3_BUCKET'   user $S3_ACCESS_KEY
    Kafka (KRaft)     $KAFKA_BOOTSTRAP   topics: $KAFKA_TOPICS
    PostgreSQL        127.0.0.1:$PG_PORT/${DATABASE_URL##*/}   (DATABASE_URL is in the environment of make; data in $PG_HOME)
    gateway           $OPENFAAS_URL   functions: $(curl -fsS "$OPENFAAS_URL/system/functions" | "$VENV/bin/python" -c 'import json,sys; print(", ".join(f["name"] for f in json.load(sys.stdin)))')
    trainer           pid $(pid_of trainer), log $LOGS/trainer.log, metrics http://127.0.0.1:${TRAINER_METRICS_PORT:-9464}/metrics
    MLflow            $MLFLOW_TRACKING_URI   experiment 'afterdark-$MODEL': every training run, its metrics, report and artifacts
    watchdog          $(cat "$AFTERDARK_CACHE/run/gateway.watchdog" 2>/dev/null || echo unknown)
    API contract      $OPENFAAS_URL/openapi.yaml    metrics: $OPENFAAS_URL/function/<name>/metrics (with the token)
    model '$MODEL'    versions: $(versions)

  Your API token (client 'local', scope admin; kept in $AFTERDARK_CACHE/api-token, only its sha256 reaches
  the functions):
    export TOKEN=$API_TOKEN

  Try it:
    curl -s $OPENFAAS_URL/function/predict -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: image/jpeg' -H 'X-User-Id: U1' --data-binary @$SAMPLES/engineer.jpg
    curl -s $OPENFAAS_URL/function/predict -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"image_b64": "'\$(base64 -w0 $SAMPLES/non_engineer.jpg)'", "user": "U2"}'
    curl -s $OPENFAAS_URL/function/predict -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: image/jpeg' --data-binary @$SAMPLES/ambiguous.jpg   # headphones and a microphone: unsure
    curl -s "$OPENFAAS_URL/function/fix?label=engineer&user=U1" -H "Authorization: Bearer \$TOKEN" -H "Idempotency-Key: \$(uuidgen || date +%s%N)" -H 'Content-Type: image/jpeg' --data-binary @$SAMPLES/ambiguous.jpg   # your vote
    curl -s $OPENFAAS_URL/function/predict/status -H "Authorization: Bearer \$TOKEN"   # versions ready, route, off-path counters
    curl -s $OPENFAAS_URL/function/healthz -H "Authorization: Bearer \$TOKEN"          # S3, Kafka, PostgreSQL; dependency versions
    curl -s "$OPENFAAS_URL/function/predict?url=http://$SAMPLES_HOST/non_engineer.jpg&user=U3" -H "Authorization: Bearer \$TOKEN"
  Without a token, /fix and /predict answer 401, and healthz and /predict/status say only up or down.
    $VENV/bin/python dev/models.py list                  # DataOps: versions, roles, traffic (also /function/models)
    $VENV/bin/python dev/models.py canary 3 10           # after a vote round made v3: 10% of traffic to it
    $VENV/bin/python dev/models.py auto on samples=4     # the canary policy: canary, replay, promote or roll back
  A vote: /fix stores the image, Kafka acknowledges it, then the trainer adds it to the ledger (PostgreSQL);
  each person's latest vote per image counts, and ${TRAIN_MIN_VOTES:-30} new votes (or 30 s) start a training run.
  URLs work too ({"image_url": "https://..."}); loopback and private addresses are refused unless FETCH_ALLOW
  names them (here: the sample host $SAMPLES_HOST, and dev/slack.py listen's 127.0.0.1:8799 as Slack's file host).

  Slack without Slack (signed exactly like Slack, with SLACK_SIGNING_SECRET=$SLACK_SIGNING_SECRET):
    $VENV/bin/python dev/slack.py listen &                       # prints what arrives at response_url
    $VENV/bin/python dev/slack.py send /predict http://$SAMPLES_HOST/engineer.jpg
    $VENV/bin/python dev/slack.py send /fix http://$SAMPLES_HOST/engineer.jpg engineer
    $VENV/bin/python dev/slack.py send /models list
    $VENV/bin/python dev/slack.py send /afterdark signup http://$SAMPLES_HOST/engineer.jpg Ada   # the dating app
    $VENV/bin/python dev/slack.py send /afterdark match
    $VENV/bin/python dev/slack.py shortcut classify $SAMPLES/engineer.jpg     # "Classify this image" on a shared photo
    $VENV/bin/python dev/slack.py shortcut correct $SAMPLES/ambiguous.jpg     # the correction form (listen shows it)
    $VENV/bin/python dev/slack.py submit non_engineer                         # ...submitted: one vote
    $VENV/bin/python dev/slack.py home                                        # the app's Home tab: your votes
  Slack After Dark over curl (12 demo profiles are signed up):
    curl -s "$OPENFAAS_URL/function/afterdark/signup?user=U1&name=Ada" -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: image/jpeg' --data-binary @$SAMPLES/engineer.jpg
    curl -s "$OPENFAAS_URL/function/afterdark/match?user=U1" -H "Authorization: Bearer \$TOKEN"

  The learning loop (votes on a new look, a version, its canary judged on images it never trained on):
    make demo                                            # or: $VENV/bin/python dev/demo_loop.py

  Logs: $LOGS      Stop everything: make down
MSG
if (( fresh )); then
  log "a first run: showing the learning loop once (make demo shows it again)"
  "$VENV/bin/python" dev/demo_loop.py --timeout 300 || log "the demo did not finish; see $LOGS/trainer.log"
fi
