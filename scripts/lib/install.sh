# shellcheck shell=bash
# Installs the test tools that are missing, pinned, into $SNAPEX_TOOLS (outside the clone), so a
# second run reuses them. Only registries are used: crates.io, npm, PyPI, Debian.

S3S_FS_VERSION=0.14.1
AZURITE_VERSION=3.35.0
# The dashboard's browser test: Debian's chromium, driven by playwright-core (which downloads
# no browser of its own).
PLAYWRIGHT_CORE_VERSION=1.65.1

: "${SNAPEX_TOOLS:=$HOME/.cache/snapex-tools}"

install_s3s_fs() {
  local root="$SNAPEX_TOOLS/s3s-fs-$S3S_FS_VERSION"
  S3S_FS_BIN="$root/bin/s3s-fs"
  [[ -x $S3S_FS_BIN ]] && return 0
  log "installing s3s-fs $S3S_FS_VERSION (a few minutes of compiling, once)"
  # Its own temporary target dir: never the project's, whose lock other builds hold.
  env -u CARGO_TARGET_DIR nice -n 5 cargo install s3s-fs --version "$S3S_FS_VERSION" \
    --features binary --locked --root "$root" --quiet
  [[ -x $S3S_FS_BIN ]] || die "s3s-fs was not installed at $S3S_FS_BIN"
}

install_azurite() {
  local dir="$SNAPEX_TOOLS/azurite-$AZURITE_VERSION"
  AZURITE_BIN="$dir/node_modules/.bin/azurite-blob"
  [[ -x $AZURITE_BIN ]] && return 0
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing azurite $AZURITE_VERSION"
  # Into a scratch dir first, so an interrupted install never looks complete.
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  npm install --prefix "$dir.partial" --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION" >&2
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
  [[ -x $AZURITE_BIN ]] || die "azurite was not installed at $AZURITE_BIN"
}

# Debian's chromium (with the fonts its pages are drawn in) for the dashboard's browser test.
install_chromium() {
  CHROMIUM_BIN=/usr/bin/chromium
  [[ -x $CHROMIUM_BIN ]] && return 0
  apt_install chromium fonts-liberation
  [[ -x $CHROMIUM_BIN ]] || die "chromium was not installed at $CHROMIUM_BIN"
}

# playwright-core from npm, outside the clone; tests/ui/e2e.mjs loads it from
# $PLAYWRIGHT_DIR (exported as SNAPEX_TEST_PLAYWRIGHT).
install_playwright() {
  local dir="$SNAPEX_TOOLS/playwright-core-$PLAYWRIGHT_CORE_VERSION"
  PLAYWRIGHT_DIR="$dir/node_modules"
  [[ -f $PLAYWRIGHT_DIR/playwright-core/package.json ]] && return 0
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing playwright-core $PLAYWRIGHT_CORE_VERSION"
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  npm install --prefix "$dir.partial" --no-audit --no-fund --loglevel=error \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
  [[ -f $PLAYWRIGHT_DIR/playwright-core/package.json ]] \
    || die "playwright-core was not installed in $PLAYWRIGHT_DIR"
}

# The venv is keyed by the hash of the requirements file: changing a pin makes a new one.
install_python_venv() {
  local req="$SNAPEX_ROOT/scripts/lib/requirements-test.txt" hash base
  hash=$(sha256sum "$req" | cut -c1-12)
  SNAPEX_VENV="$SNAPEX_TOOLS/venv-$hash"
  SNAPEX_PYTHON_BIN="$SNAPEX_VENV/bin/python"
  [[ -f $SNAPEX_VENV/.complete ]] && return 0
  # Debian's interpreter when it is there: it does not move when a user's pyenv does.
  base=python3
  [[ -x /usr/bin/python3 ]] && base=/usr/bin/python3
  if ! "$base" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  log "creating python venv $SNAPEX_VENV"
  rm -rf "$SNAPEX_VENV"
  "$base" -m venv "$SNAPEX_VENV"
  "$SNAPEX_PYTHON_BIN" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$SNAPEX_VENV/.complete"
}

# PostgreSQL server binaries (Debian's postgresql, 15 on Debian 12).
install_postgres() {
  PG_BIN=$(find_pg_bin) || {
    apt_install postgresql
    PG_BIN=$(find_pg_bin) || die "postgresql installed but initdb not found"
  }
}

find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return 0; }
  done
  d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return 0; }
  return 1
}

install_java() {
  command -v javac >/dev/null && command -v java >/dev/null && return 0
  apt_install openjdk-17-jdk-headless
}

install_all() {
  mkdir -p "$SNAPEX_TOOLS"
  # One installer at a time per tools dir (two runs in parallel must not race on a half
  # installed venv).
  exec 9>"$SNAPEX_TOOLS/.install.lock"
  flock 9
  step "install java" install_java
  step "install postgresql" install_postgres
  step "install python venv" install_python_venv
  step "install azurite" install_azurite
  step "install s3s-fs" install_s3s_fs
  step "install chromium" install_chromium
  step "install playwright-core" install_playwright
  flock -u 9
}
