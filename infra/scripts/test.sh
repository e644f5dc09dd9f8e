#!/usr/bin/env bash
# The whole test suite: quality gates, every test (including the DynamoDB side
# of the conformance suites against moto_server), schema-driven fuzzing of
# `quper serve` with Schemathesis, the operator UI in headless chromium
# (infra/scripts/browser.sh), and cfn-lint. Installs the Python tools it needs
# into ./.venv, the HTML validator into infra/browser/node_modules and Debian's
# chromium and chromium-driver, starts and stops its own servers, and fails
# loudly when something is missing. Nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing (install Rust 1.95)"
command -v python3 >/dev/null || die "python3 is missing (install Python 3.11)"

say "python tools (.venv)"
bash infra/scripts/venv.sh
venv_bin="$root/.venv/bin"
[ -x "$venv_bin/moto_server" ] || die "moto_server missing from .venv"
[ -x "$venv_bin/cfn-lint" ] || die "cfn-lint missing from .venv"
[ -x "$venv_bin/st" ] || die "schemathesis (st) missing from .venv"
[ -x "$venv_bin/ministack" ] || die "ministack missing from .venv"

say "chromium and chromedriver (browser tests of /docs, /redoc and the operator UI)"
# Debian's packages only: nothing downloads a browser or a driver of its own.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo"
  $as_root apt-get update -qq || die "apt-get update failed (Debian's ${missing[*]} packages are needed)"
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "could not install Debian's ${missing[*]} packages"
fi
command -v chromium >/dev/null 2>&1 || die "chromium is missing after installing it"
[ -x /usr/bin/chromedriver ] || die "chromedriver (Debian's chromium-driver) is missing after installing it"

say "html-validate (infra/browser, npm ci)"
command -v npm >/dev/null 2>&1 || die "npm is missing (Node.js 20.19 or later with npm): the UI's HTML validator is an npm package"
lock_sum=$(sha256sum infra/browser/package-lock.json | cut -d' ' -f1)
lock_stamp=infra/browser/node_modules/.package-lock.sha256
if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$lock_sum" ]; then
  (cd infra/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || die "npm ci in infra/browser failed"
  echo "$lock_sum" > "$lock_stamp"
fi
[ -x infra/browser/node_modules/.bin/html-validate ] || die "html-validate is missing from infra/browser/node_modules"

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# moto, one request at a time (see infra/scripts/moto_atomic.py for why).
say "moto (DynamoDB and S3 emulator) on 127.0.0.1"
moto_log=$(mktemp)
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv_bin/python" infra/scripts/moto_atomic.py 127.0.0.1 "$moto_port" >"$moto_log" 2>&1 &
moto_pid=$!
ministack_pid=""
ministack_log=$(mktemp)
cleanup() {
  kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true; rm -f "$moto_log"
  if [ -n "$ministack_pid" ]; then kill "$ministack_pid" 2>/dev/null || true; wait "$ministack_pid" 2>/dev/null || true; fi
  rm -f "$ministack_log"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1; then break; fi
  kill -0 $moto_pid 2>/dev/null || { cat "$moto_log" >&2; die "moto_server exited"; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1 || { cat "$moto_log" >&2; die "moto_server did not start"; }
export QUPER_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$moto_port"
# moto serves S3 on the same port: the ObjectStore conformance suite's S3 side
# (tests/e2e/objects_conformance.rs; presigned PUT/GET over real HTTP).
export QUPER_TEST_S3_ENDPOINT="http://127.0.0.1:$moto_port"

# ministack: Athena (its SQL runs in DuckDB), S3 and Glue, for the Athena side
# of the analytics conformance suite (tests/e2e/analytics_conformance.rs).
say "ministack (Athena, S3, Glue emulator) on 127.0.0.1"
ministack_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GATEWAY_PORT="$ministack_port" "$venv_bin/ministack" >"$ministack_log" 2>&1 &
ministack_pid=$!
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$ministack_port/_ministack/health" >/dev/null 2>&1; then break; fi
  kill -0 $ministack_pid 2>/dev/null || { cat "$ministack_log" >&2; die "ministack exited"; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$ministack_port/_ministack/health" >/dev/null 2>&1 || { cat "$ministack_log" >&2; die "ministack did not start"; }
export QUPER_TEST_MINISTACK_ENDPOINT="http://127.0.0.1:$ministack_port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true

say "cargo build --workspace --bins (the e2e tests run the real quper and Lambda binaries)"
# `cargo test` builds a package's binaries only for that package's own
# integration tests; the shared-table tests run other packages' binaries.
cargo build --workspace --bins

say "cargo test"
cargo test --workspace --all-targets 2>&1 | tee /tmp/quper-test.$$.log
grep -q "test result:" /tmp/quper-test.$$.log || die "cargo test ran no tests"
rm -f /tmp/quper-test.$$.log

# The operator UI in headless chromium (pytest + Selenium), against `quper
# serve` built by cargo test above; see infra/scripts/browser.sh.
say "browser: the operator UI in headless chromium"
[ -x "$root/target/debug/quper" ] || die "target/debug/quper was not built by cargo test; cannot run the browser tests"
bash infra/scripts/browser.sh "$root/target/debug/quper" \
  || die "the browser tests failed (screenshots, server log and JUnit report in target/browser-artifacts)"

# Schemathesis against `quper serve` (built by cargo test above), every route
# of the generated document in both API versions; see infra/scripts/fuzz.sh.
say "fuzz: schemathesis against quper serve"
[ -x "$root/target/debug/quper" ] || die "target/debug/quper was not built by cargo test; cannot fuzz"
bash infra/scripts/fuzz.sh "$root/target/debug/quper" || die "the fuzz run failed (report above; target/fuzz has the JUnit report and server log)"

say "cfn-lint template.yaml"
"$venv_bin/cfn-lint" template.yaml

say "all checks passed"
