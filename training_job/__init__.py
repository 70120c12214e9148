"""The training job: bootstrap the first versions, then learn online from Kafka fixes.

TensorFlow/Keras is imported only inside this package. See `python -m training_job --help`.
"""
