"""Running tuyen: the local Kafka broker, topics, settings from the environment, the `tuyen` CLI."""
