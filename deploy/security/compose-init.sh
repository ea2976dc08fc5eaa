#!/bin/sh
# One-shot set-up of the docker-compose cluster's security (service `kafka-init`):
# the stations' SCRAM-SHA-512 credential, then every ACL of kafka-acls.sh.
# Runs over the INTERNAL listener, whose ANONYMOUS clients are super users on that network.
set -eu
BIN="${KAFKA_BIN:-/opt/kafka/bin}"
BOOTSTRAP="${BOOTSTRAP:-kafka-1:9092}"
PASSWORD_FILE="${STATION_PASSWORD_FILE:-/run/secrets/station_password}"
password="$(tr -d '\r\n' < "$PASSWORD_FILE")"
"$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter \
  --entity-type users --entity-name tuyen-station \
  --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
BOOTSTRAP="$BOOTSTRAP" KAFKA_BIN="$BIN" sh "$(dirname "$0")/kafka-acls.sh"
echo "kafka-init: station credential and ACLs in place"
