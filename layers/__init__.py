"""Slack After Dark's shared layer: every function and the training job import from here.

A request flows one way: edge -> a service package -> the reply; events leave off the hot path.

The core and the seams stay flat (what everything uses):
  config    typed settings: the ONLY module that reads the environment (and OpenFaaS secret files)
  errors    the one exception tree, with each error's HTTP status
  logs      JSON log lines carrying the request they belong to
  metrics   Prometheus metrics of every function and the trainer
  images    decoding and preprocessing, one function shared by training and serving
  store     the S3 seam (BlobStore): conditional reads and writes, botocore errors translated
  events    the Kafka seam: record types (docs/formats.md), the acknowledged sink, consumers and readers
  db        the PostgreSQL seam: a connection pool and the migrations (schema: the SQL)
  schema    the numbered migrations
  wiring    builds every shared piece a function uses from Settings, once (only functions import it)

The packages, one concern each (each __init__ says what lives there and what may import it):
  edge/      the normalised request, the JSON API's middleware, tokens, intake, JSON answers, media links
  serving/   LiteRT, the runtime (hot reload), routing, /predict, rendezvous, the ensemble
  ledger/    the vote (one type), the ledger, consensus, vote limits, the recorder /fix uses
  registry/  model versions and the control document, DataOps, /models' verbs and service
  analysis/  replay of live traffic, comparison and charts, the paired test, the canary policy's pure parts
  matching/  the dating app
  slack/     the Slack adapter: verify, dispatch, deliver, Block Kit, the review channel, the replay guard

Nevers (tests/layers/test_nevers.py): no layer imports functions/, training_job/, portraits/, dev/, bench/,
tests/ or TensorFlow; the layer's modules import one another without a cycle. See docs/architecture.md.
"""
