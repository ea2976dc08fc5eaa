#!/bin/sh
# One-shot set-up of the docker-compose cluster's principals (service `kafka-init`), as admin:
# a SCRAM-SHA-512 credential for every principal of principals.txt (generated from
# deploy/principals.py), its password read from the secret /run/secrets/kafka-<principal>
# (written by `tuyen broker secrets`), then every ACL of kafka-acls.sh. Idempotent.
# Stations: `sh compose-init.sh --station 00004` (password from /run/secrets/kafka-station-00004).
set -eu
BIN="${KAFKA_BIN:-/opt/kafka/bin}"
BOOTSTRAP="${BOOTSTRAP:-kafka-1:9092}"
HERE="$(dirname "$0")"
ADMIN_CONFIG=/tmp/admin.properties
sh "$HERE/admin-config.sh" "$ADMIN_CONFIG"

scram() {  # principal
  password="$(tr -d '\r\n' < "/run/secrets/kafka-$1")"
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
    --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
}

if [ "${1:-}" = "--station" ]; then
  scram "station-$2"
  BOOTSTRAP="$BOOTSTRAP" KAFKA_BIN="$BIN" ADMIN_CONFIG="$ADMIN_CONFIG" \
    sh "$HERE/kafka-acls.sh" --station "$2"
  exit 0
fi

while read -r principal; do
  [ -n "$principal" ] && scram "$principal"
done < "$HERE/principals.txt"
BOOTSTRAP="$BOOTSTRAP" KAFKA_BIN="$BIN" ADMIN_CONFIG="$ADMIN_CONFIG" sh "$HERE/kafka-acls.sh"
echo "kafka-init: every principal's credential and ACLs in place"
