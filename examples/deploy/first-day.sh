#!/usr/bin/env bash
# The first day of a hedui installation on Debian, in the order docs/DEPLOY.md explains:
# the service user and its folders, the certificate, the config, the unit, the first
# admin, the first pull, the recipients list and the first reconciliation.
#
# Run it as root from a folder holding:
#   hedui            the release binary (cargo build --release: target/release/hedui)
#   hedui.service    examples/deploy/hedui.service
#   server.pem, server.key   the centre's certificate for this host, and its key
#   sources.toml     the [[source]] sections of your departments (see the README)
#   policy.toml      the centre's thresholds (hedui generate writes an example)
#   recipients.csv   the current recipients list (在保名单), the applicant format
# with ADMIN_PASSWORD and SYSTEM_TOKEN set (the first admin's password, and the token
# of the case-management system, which the config keeps only as its SHA-256):
#   ADMIN_PASSWORD=… SYSTEM_TOKEN=… bash first-day.sh
#
# tests/deploy.rs runs this script as it is, with ROOT=<a temporary folder>: every path
# then lies under ROOT, the service runs as the calling user, and — a test machine has
# no systemd — the unit's own ExecStart line is started in place of `systemctl`.
set -euo pipefail
ROOT=${ROOT:-}
PORT=${PORT:-8443}
LISTEN=${LISTEN:-0.0.0.0}
HOST=${HOST:-$(hostname -f 2>/dev/null || hostname)}
: "${ADMIN_PASSWORD:?set ADMIN_PASSWORD to the first admin's password (at least 12 characters)}"
: "${SYSTEM_TOKEN:?set SYSTEM_TOKEN to the case-management system's token}"

BIN=$ROOT/usr/local/bin/hedui
ETC=$ROOT/etc/hedui
STATE=$ROOT/var/lib/hedui
KEYS=$ROOT/srv/hedui-key
UNIT=$ROOT/etc/systemd/system/hedui.service

# 1. The service user, and commands run as it.
if [ -z "$ROOT" ]; then
  [ "$(id -u)" = 0 ] || { echo "first-day: run as root" >&2; exit 1; }
  id hedui >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir /var/lib/hedui --shell /usr/sbin/nologin hedui
  SVC_USER=hedui
  as_service() { runuser -u hedui -- "$@"; }
else
  SVC_USER=$(id -un)
  as_service() { "$@"; }
fi
SVC_GROUP=$(id -gn "$SVC_USER")

# 2. The binary; the state folder and the key volume, the service user's alone.
install -D -m 0755 hedui "$BIN"
install -d -m 0700 -o "$SVC_USER" -g "$SVC_GROUP" "$STATE" "$KEYS"
install -d -m 0750 -o root -g "$SVC_GROUP" "$ETC" "$ETC/tls" 2>/dev/null ||
  install -d -m 0750 "$ETC" "$ETC/tls"

# 3. The certificate: readable by the service, the key by nobody else.
install -m 0644 server.pem "$ETC/tls/server.pem"
install -m 0640 -g "$SVC_GROUP" server.key "$ETC/tls/server.key"

# 4. The config: the lake and the state on /var/lib/hedui, the audit key and its anchor
#    on their own volume, the night's pulls at 01:00 and the re-check at 03:00.
SYSTEM_SHA=$(printf %s "$SYSTEM_TOKEN" | sha256sum | cut -d' ' -f1)
cat > "$ETC/hedui.toml" <<TOML
[lake]
url = "$STATE/lake"

[state]
path = "$STATE/state"
audit_key = "$KEYS/audit.key"
audit_anchor = "$KEYS/audit.anchor"

[server]
listen = "$LISTEN:$PORT"
tls_cert = "$ETC/tls/server.pem"
tls_key = "$ETC/tls/server.key"
policy = "$ETC/policy.toml"

[[token]]
name = "case-system"
sha256 = "$SYSTEM_SHA"
role = "system"
regions = ["41", "51"]

[schedule]
ingest = "0 1 * * *"
pulls_within_minutes = 90
reconcile = "0 3 * * *"

TOML
cat sources.toml >> "$ETC/hedui.toml"
install -m 0640 policy.toml "$ETC/policy.toml"
chmod 0640 "$ETC/hedui.toml"
chgrp "$SVC_GROUP" "$ETC/hedui.toml" "$ETC/policy.toml" 2>/dev/null || true

# 5. The unit.
install -D -m 0644 hedui.service "$UNIT"

# 6. The first admin (the password on standard input, never an argument); kept if the
#    script is run again.
if ! as_service "$BIN" user list --config "$ETC/hedui.toml" | awk -F'\t' '$1 == "admin" { f = 1 } END { exit !f }'; then
  printf '%s' "$ADMIN_PASSWORD" |
    as_service "$BIN" user add --config "$ETC/hedui.toml" --name admin --role admin \
      --regions 41,51 --password-stdin
fi

# 7. The first pull of every department (later the night does it: [schedule] ingest).
as_service "$BIN" ingest --config "$ETC/hedui.toml"

# 8. The service.
if [ -z "$ROOT" ]; then
  systemctl daemon-reload
  systemctl enable --now hedui
else
  # The unit's ExecStart, as written, with its paths under ROOT.
  START=$(sed -n 's/^ExecStart=//p' "$UNIT" |
    sed "s|/usr/local/bin/hedui|$BIN|; s|/etc/hedui|$ETC|")
  mkdir -p "$ROOT/run"
  # shellcheck disable=SC2086
  setsid $START < /dev/null > "$ROOT/run/hedui.log" 2>&1 &
  echo $! > "$ROOT/run/hedui.pid"
fi
API="https://$HOST:$PORT"
# --fail-with-body: a refused list still shows its rejected rows.
api() { curl --fail-with-body -sS --cacert "$ETC/tls/server.pem" -H "Authorization: Bearer $SYSTEM_TOKEN" "$@"; }
for _ in $(seq 1 120); do
  curl -fsS --cacert "$ETC/tls/server.pem" "$API/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS --cacert "$ETC/tls/server.pem" "$API/readyz"; echo

# 9. The recipients list into the hub, then the first reconciliation of it, now.
api -X PUT -H "Content-Type: text/csv" --data-binary @recipients.csv \
  "$API/api/v1/recipients?file_name=recipients.csv"; echo
api -X POST "$API/api/v1/reconciliations"; echo
for _ in $(seq 1 600); do
  api "$API/api/v1/reconciliations" | grep -q '"status":"done"' && break
  sleep 1
done
api "$API/api/v1/reconciliations"; echo
echo "first day: ok"
