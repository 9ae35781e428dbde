# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/lib/*.sh: logging, timing, ports, waiting.
# Sourced, never run; expects `set -euo pipefail` from the caller.

SNAPEX_T0=${SNAPEX_T0:-$(date +%s)}
SNAPEX_TIMINGS=()

log() { printf '[snapex-test %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# step NAME CMD...: runs CMD and records how long it took. CMD runs in the script's own shell
# (its exports must survive) and NOT inside `||` or `if`, where bash would switch `set -e` off
# for everything CMD calls; a failure therefore exits the script, and the EXIT trap reports
# $SNAPEX_STEP as the step that failed.
SNAPEX_STEP=
step() {
  local name=$1; shift
  local t0
  t0=$(date +%s)
  SNAPEX_STEP=$name
  log "== $name"
  "$@"
  SNAPEX_TIMINGS+=("$(printf '%-32s %4ss' "$name" "$(( $(date +%s) - t0 ))")")
  SNAPEX_STEP=
}

print_timings() {
  local line
  log "timings (total $(( $(date +%s) - SNAPEX_T0 ))s):"
  for line in "${SNAPEX_TIMINGS[@]}"; do printf '    %s\n' "$line" >&2; done
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# A TCP port on 127.0.0.1 that was free a moment ago. The kernel picks it, so two parallel
# runs do not collide; the short window before the server binds it is the accepted risk.
free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for NAME PID LOG TIMEOUT_S CHECK...: polls CHECK until it succeeds; fails early, with the
# end of LOG, if PID dies, and after TIMEOUT_S.
wait_for() {
  local name=$1 pid=$2 logfile=$3 timeout=$4; shift 4
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during startup; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      return 1
    fi
    if (( $(date +%s) >= deadline )); then
      log "$name not ready after ${timeout}s; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# stop_pid NAME PID: TERM, up to 10 s grace, then KILL. Only ever called with pids this run
# started itself.
stop_pid() {
  local name=$1 pid=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { log "stopped $name (pid $pid)"; return 0; }
    sleep 0.2
  done
  log "$name (pid $pid) ignored TERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
}

# apt_install PKG...: installs Debian packages, running `apt-get update` only when a package
# cannot be found in the current lists.
apt_install() {
  is_root || die "missing $*; install them (apt-get install $*) or run as root"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
    log "apt-get update (needed for: $*)"
    apt-get update -qq
    apt-get install -y --no-install-recommends "$@"
  fi
}
