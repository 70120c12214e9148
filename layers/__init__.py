"""Slack After Dark's shared layer: every function and the training job import from here.

One module per concept (see docs/formats.md for the storage and event formats):
  config    typed settings read once from the environment and OpenFaaS secrets
  errors    the one exception tree, and its mapping to HTTP statuses
  store     the S3 seam (BlobStore): get/put with conditional requests, botocore errors translated
  events    Kafka record types, topics, producer/consumer seams
  images    preprocessing shared by training and serving (and, later, safe intake)
  registry  model versions in S3 and the routing control document
  synth     deterministic synthetic portraits (data for tests, the demo and bootstrap)
"""
