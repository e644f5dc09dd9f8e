#!/usr/bin/env bash
# The operator UI in a real browser: starts `quper serve` (a fresh, empty
# data directory, a free 127.0.0.1 port), waits for /health, runs the pytest +
# Selenium scenarios of tests/browser/ in headless Debian chromium, and stops
# the server whatever happens. Builds nothing: pass the binary (default
# target/debug/quper, which `cargo test` builds).
#
#   bash infra/scripts/browser.sh [path/to/quper] [pytest arguments...]
#
# Needs (infra/scripts/test.sh installs them): Debian's chromium and
# chromium-driver, the .venv (selenium, pytest: infra/requirements-dev.txt;
# brought up to date here by venv.sh), and html-validate in
# infra/browser/node_modules (npm ci). Downloads no browser and no driver.
# Screenshots, the server's log and a JUnit report go to
# target/browser-artifacts/ (QUPER_BROWSER_ARTIFACTS).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

say() { printf 'browser.sh: %s\n' "$*"; }
die() { printf 'browser.sh: %s\n' "$*" >&2; exit 1; }

quper=${1:-target/debug/quper}
[ $# -gt 0 ] && shift
[ -x "$quper" ] || die "$quper is missing or not executable (run cargo build -p quper, or cargo test, first)"
quper=$(cd "$(dirname "$quper")" && pwd)/$(basename "$quper")

bash infra/scripts/venv.sh
python="$root/.venv/bin/python"
[ -x "$python" ] || die ".venv is missing: run bash infra/scripts/venv.sh"
"$python" -c 'import selenium, pytest' 2>/dev/null || die "selenium or pytest missing from .venv (bash infra/scripts/venv.sh)"
chromium=${CHROMIUM:-/usr/bin/chromium}
chromedriver=${CHROMEDRIVER:-/usr/bin/chromedriver}
[ -x "$chromium" ] || die "$chromium is missing: install Debian's chromium package"
[ -x "$chromedriver" ] || die "$chromedriver is missing: install Debian's chromium-driver package"
validator="$root/infra/browser/node_modules/.bin/html-validate"
[ -x "$validator" ] || die "html-validate is missing: run (cd infra/browser && npm ci)"
command -v curl >/dev/null || die "curl is missing"

artifacts=${QUPER_BROWSER_ARTIFACTS:-$root/target/browser-artifacts}
rm -rf "$artifacts"
mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)
data=$(mktemp -d "${TMPDIR:-/tmp}/quper-browser.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
log="$artifacts/server.log"

# The server's environment: this run's settings only (none of the caller's
# QUPER_* or AWS_* variables), no bootstrap account (the first-run scenario
# creates it through the page).
server_env=(env -i "PATH=$PATH" "HOME=${HOME:-/tmp}" "TMPDIR=${TMPDIR:-/tmp}"
  "QUPER_DATA_DIR=$data/data" "QUPER_ADDR=127.0.0.1:$port" "QUPER_PUBLIC_URL=$base"
  "RUST_LOG=info" "NO_COLOR=1"
  # One browser on 127.0.0.1 drives every page: generous request limits (the
  # limits themselves are tested in tests/e2e/rate_limits.rs).
  "QUPER_RATE_LIMIT_DEFAULT=1000000/minute" "QUPER_RATE_LIMIT_AI=1000000/minute"
  "QUPER_RATE_LIMIT_AUTH=1000000/minute" "QUPER_RATE_LIMIT_INGEST=1000000/minute")
setsid "${server_env[@]}" "$quper" serve </dev/null >"$log" 2>&1 &
server=$!

stop() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM -- "-$server" 2>/dev/null || kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$server" 2>/dev/null || true
  fi
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT

for _ in $(seq 1 300); do
  if curl -fsS "$base/health" >/dev/null 2>&1; then break; fi
  kill -0 "$server" 2>/dev/null || { tail -n 40 "$log" >&2; die "quper serve exited before answering /health"; }
  sleep 0.1
done
curl -fsS "$base/health" >/dev/null 2>&1 || { tail -n 40 "$log" >&2; die "quper serve did not answer /health within 30 s"; }
say "quper serve answers at $base (log: $log)"

status=0
QUPER_BROWSER_BASE="$base" QUPER_BROWSER_ARTIFACTS="$artifacts" HTML_VALIDATE="$validator" \
  CHROMIUM="$chromium" CHROMEDRIVER="$chromedriver" SE_OFFLINE=true PYTHONDONTWRITEBYTECODE=1 \
  timeout --signal=TERM --kill-after=10 600 \
  "$python" -m pytest tests/browser -p no:cacheprovider --rootdir tests/browser -q -ra --tb=short \
  --junitxml="$artifacts/junit.xml" "$@" || status=$?

if ! kill -0 "$server" 2>/dev/null; then
  say "quper serve died during the run"
  [ "$status" -ne 0 ] || status=1
fi
if [ "$status" -ne 0 ]; then
  printf '\n---- quper serve log, last 40 lines (%s) ----\n' "$log" >&2
  tail -n 40 "$log" >&2
fi
say "screenshots, server log and JUnit report: $artifacts"
if [ "$status" -eq 5 ]; then die "pytest collected no tests"; fi
[ "$status" -eq 0 ] || die "the browser tests failed (exit $status)"
say "all browser tests passed"
