"""Every Kafka client is built from one place, with the production authentication when it is configured."""
from layers.config import Settings


def test_local_clients_are_plaintext():
    assert Settings.from_env({}).kafka.client_options() == {"bootstrap_servers": "127.0.0.1:9092",
                                                            "security_protocol": "PLAINTEXT"}


def test_production_clients_authenticate_with_scram_over_tls():
    env = {"KAFKA_BOOTSTRAP": "kafka:9093", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "KAFKA_SASL_USERNAME": "fix", "KAFKA_SASL_PASSWORD": "s3cret", "KAFKA_SSL_CAFILE": "/etc/kafka/ca.crt"}
    assert Settings.from_env(env).kafka.client_options() == {
        "bootstrap_servers": "kafka:9093", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "fix", "sasl_plain_password": "s3cret", "ssl_cafile": "/etc/kafka/ca.crt"}
