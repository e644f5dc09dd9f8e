#!/usr/bin/env bash
# The benchmark: builds the Lambda functions, the hello-world baseline, the
# local host and the benchmark driver in release, then runs the driver, which
# measures cold start, size and memory of each function against the baseline
# and the local host's throughput and latency, all on 127.0.0.1. Prints a
# table and writes .bench/results.md and .bench/results.json (logs of the
# processes it started in .bench/logs/). Extra arguments go to quper-bench
# (see `target/release/quper-bench --help`), e.g. `--runs 50 --check`.
# docs/performance.md explains the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo is missing (install Rust 1.95)"
[ "$(uname -s)" = Linux ] || die "the benchmark reads /proc and needs Linux"

printf '==> cargo build --release\n'
# One --bin per binary: a lone `--bin quper-bench` would restrict every -p to
# that one target and leave the functions unbuilt.
cargo build --release \
  -p quper-health -p quper-identity -p quper-hello-baseline -p quper -p quper-tests \
  --bin quper-health --bin quper-identity --bin quper-hello-baseline --bin quper --bin quper-bench

bin_dir="${CARGO_TARGET_DIR:-target}/release"
mkdir -p .bench
printf '==> quper-bench\n'
exec "$bin_dir/quper-bench" --bin-dir "$bin_dir" --out .bench "$@"
