#!/bin/sh
# Write the admin's client configuration (SASL/PLAIN over TLS, the brokers' own super user)
# to $1, from the docker-compose secrets kafka-admin (password=...) and kafka-ca. Used by the
# brokers' healthcheck and by compose-init.sh; the file is 0600 and stays in the container.
set -eu
out="$1"
password="$(sed -n 's/^password=//p' "${ADMIN_SECRET:-/run/secrets/kafka-admin}" | tr -d '\r\n')"
umask 077
cat > "$out" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$password";
ssl.truststore.type=PEM
ssl.truststore.location=${CA_SECRET:-/run/secrets/kafka-ca}
PROPS
