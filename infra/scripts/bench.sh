#!/usr/bin/env bash
# The benchmark: builds the Lambda functions, the hello-world baseline, the
# local host and the benchmark driver in release, then runs the driver, which
# measures cold start, size and memory of each function against the baseline,
# the local host's throughput and latency, alert ingestion through the local
# host against Prometheus Alertmanager (Debian's prometheus-alertmanager,
# installed here when missing), the storage calls per alert, and the time
# from an alert to the SMS request that pages someone (at an Infobip stub),
# what a rate-limit check costs per request (the same GET with limits on and
# off, their ratio), all on 127.0.0.1. Ingestion also runs in batches of 10 and
# 100 alerts a request against both systems, and then kills `quper serve` with
# SIGKILL, restarts it on the same data and checks that every alert answered
# 2xx is stored. Prints a table and writes .bench/results.md and
# .bench/results.json (logs of the processes it started in .bench/logs/).
# Extra arguments go to quper-bench (see `target/release/quper-bench --help`),
# e.g. `--runs 50 --check`; `--soak` adds the 10-minute soak at 80% of the
# measured ingestion maximum (`--soak-seconds N` to shorten it), and
# `--only-ingest` runs the ingestion part alone. docs/performance.md explains
# the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo is missing (install Rust 1.95)"
[ "$(uname -s)" = Linux ] || die "the benchmark reads /proc and needs Linux"

# Alertmanager, the ingestion baseline: on PATH, or Debian's package.
find_alertmanager() { command -v alertmanager || command -v prometheus-alertmanager || true; }
alertmanager="$(find_alertmanager)"
if [ -z "$alertmanager" ]; then
  printf '==> apt-get install prometheus-alertmanager (the ingestion baseline)\n'
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "prometheus-alertmanager is missing and installing it needs root or sudo"
    sudo=(sudo)
  fi
  # On a machine run by systemd the package also starts its own service (port
  # 9093); the benchmark does not use it and starts one on a free loopback port.
  "${sudo[@]}" apt-get update -qq \
    && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager \
    || die "could not install prometheus-alertmanager (apt-get failed); install it, or put alertmanager on PATH"
  alertmanager="$(find_alertmanager)"
  [ -n "$alertmanager" ] || die "prometheus-alertmanager installed, but neither alertmanager nor prometheus-alertmanager is on PATH"
fi
printf '==> Alertmanager: %s\n' "$alertmanager"

printf '==> cargo build --release\n'
# One --bin per binary: a lone `--bin quper-bench` would restrict every -p to
# that one target and leave the functions unbuilt.
cargo build --release \
  -p quper-health -p quper-identity -p quper-ingest -p quper-hello-baseline -p quper -p quper-tests \
  --bin quper-health --bin quper-identity --bin quper-ingest --bin quper-hello-baseline --bin quper --bin quper-bench

bin_dir="${CARGO_TARGET_DIR:-target}/release"
mkdir -p .bench
printf '==> quper-bench\n'
exec "$bin_dir/quper-bench" --bin-dir "$bin_dir" --out .bench --alertmanager "$alertmanager" "$@"
