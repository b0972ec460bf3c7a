#!/usr/bin/env bash
# hedui serve, end to end on this machine: a generated city, a test certificate, three
# tokens, the lake, the server, and one curl per route. Run it in an empty folder:
#   bash examples/serve-walkthrough.sh          (HEDUI=path/to/hedui, PORT=8443 to change)
# tests/walkthrough.rs runs it as it is.
set -euo pipefail
H=${HEDUI:-hedui}
PORT=${PORT:-8443}

# 1. A city: the six departments' files, an applicant batch (GBK), a policy.
"$H" generate --people 2000 --households 200 --out city --quiet

# 2. A certificate for 127.0.0.1 (a real deployment uses the centre's own).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout server.key -out server.pem 2>/dev/null

# 3. Tokens: the config keeps only their SHA-256.
SYSTEM=case-system-token-change-me
STAFF=staff-token-change-me
AUDITOR=auditor-token-change-me
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat > hedui.toml <<TOML
[lake]
url = "lake"

[state]
path = "state"

[server]
listen = "127.0.0.1:$PORT"
tls_cert = "server.pem"
tls_key = "server.key"
policy = "city/policy.toml"

[[token]]
name = "case-system"
sha256 = "$(sha $SYSTEM)"
role = "system"                    # checks and batches, full ID numbers
regions = ["11", "41", "46", "51"]

[[token]]
name = "staff-zhengzhou"
sha256 = "$(sha $STAFF)"
role = "staff"                     # checks and batches, ID numbers masked
regions = ["4101"]

[[token]]
name = "auditor"
sha256 = "$(sha $AUDITOR)"
role = "auditor"                   # the audit log only
regions = ["41"]

[schedule]
reconcile = "0 2 * * *"            # nightly, local time (a missed night runs at start)
recipients = "city/applicants.csv"
TOML
for s in hr housing police tax bank fund; do
  printf '\n[[source]]\nname = "%s"\nkind = "files"\nurl = "city/sources"\n' "$s" >> hedui.toml
done

# 4. The departments' data into the lake; then the server.
"$H" ingest --config hedui.toml --quiet
"$H" serve --config hedui.toml 2> serve.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
# wait_for SECONDS WHAT COMMAND…: runs COMMAND until it succeeds, at most SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then echo "walkthrough: $what did not happen in time" >&2; exit 1; fi
    sleep 0.2
  done
}
wait_for 60 "the server listening" grep -q "listening on" serve.log

# 5. One curl per route.
BASE="https://127.0.0.1:$PORT"
api() { curl -fsS --cacert server.pem -H "Authorization: Bearer $1" "$BASE$2" "${@:3}"; echo; }

# one household, as a case system asks (the result: verdict, flags, evidence)
api "$STAFF" /api/v1/checks -d '{"household_id":"SQ1","region_code":"410102","area_type":"城市",
  "aid_type":"低保","authorization_id":"A1",
  "members":[{"id_number":"410102198001010018","name":"张伟","relation":"本人"}]}'

# a batch file (GBK CSV here; XLSX and JSON Lines too) → 202 {"batch_id"}
BATCH=$(api "$SYSTEM" "/api/v1/batches?file_name=applicants.csv" \
  -H 'Content-Type: text/csv' --data-binary @city/applicants.csv | sed 's/.*"batch_id":"\([0-9a-f]*\)".*/\1/')
done_batch() { api "$SYSTEM" "/api/v1/batches/$BATCH" | grep -q '"status":"done"'; }
wait_for 300 "the batch finishing" done_batch
api "$SYSTEM" "/api/v1/batches/$BATCH"                       # status, progress, counts
api "$SYSTEM" "/api/v1/batches/$BATCH/results" > results.jsonl
api "$SYSTEM" "/api/v1/batches/$BATCH/rejected" > rejected.jsonl
api "$SYSTEM" "/api/v1/batches/$BATCH/report" -o report.html

# the nightly reconciliation's runs, changes and report (changes first)
done_run() { api "$SYSTEM" /api/v1/reconciliations | grep -q '"status":"done"'; }
wait_for 300 "the nightly reconciliation finishing" done_run
api "$SYSTEM" /api/v1/reconciliations
api "$SYSTEM" /api/v1/reconciliations/1/changes > changes.json
api "$SYSTEM" /api/v1/reconciliations/1/report -o run-report.html

# the audit log (auditors and admins; only their regions' households)
api "$AUDITOR" "/api/v1/audit?from=2026-01-01&region=4101" > audit.json

# operations: readiness, Prometheus metrics, the OpenAPI document
curl -fsS --cacert server.pem "$BASE/healthz"; echo
curl -fsS --cacert server.pem "$BASE/metrics" | grep -E '^hedui_(job_queue_depth|checks_total)'
curl -fsS --cacert server.pem "$BASE/api/v1/openapi.json" -o openapi.json

# SIGTERM: no new work, the running job finishes or is queued again
kill -TERM "$SERVER"; wait "$SERVER"
"$H" audit verify --config hedui.toml
echo "walkthrough: ok ($(wc -l < results.jsonl) households in the batch's results)"
