#!/usr/bin/env bash
# Schema-driven fuzzing: Schemathesis against `quper serve`, over every route
# of the generated OpenAPI document in both API versions, with a bounded
# number of examples per operation. Fails on any 5xx, any response that breaks
# its documented schema, status or content type, and any failure that is not
# in the one error format. Builds nothing: pass the binary (default
# target/debug/quper, which `cargo test` builds).
#
#   bash infra/scripts/fuzz.sh [path/to/quper]
#
# The server and Schemathesis run in a private network namespace with only a
# loopback interface, so nothing the fuzzer makes up (webhook URLs, SNS
# certificate URLs, ...) can reach another host. Settings: see
# infra/scripts/fuzz.py (QUPER_FUZZ_MAX_EXAMPLES, QUPER_FUZZ_SEED).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 1; }

quper=${1:-target/debug/quper}
[ -x "$quper" ] || die "$quper is missing or not executable (run cargo build -p quper, or cargo test, first)"
quper=$(cd "$(dirname "$quper")" && pwd)/$(basename "$quper")

bash infra/scripts/venv.sh
st="$root/.venv/bin/st"
[ -x "$st" ] || die "schemathesis (st) missing from .venv"
python="$root/.venv/bin/python"

if [ "${QUPER_FUZZ_IN_NAMESPACE:-}" != 1 ]; then
  command -v unshare >/dev/null || die "unshare (util-linux) is missing: the fuzz run needs a private network namespace"
  command -v ip >/dev/null || die "ip (iproute2) is missing: the fuzz run needs it to bring up loopback"
  unshare --net true 2>/dev/null ||
    die "cannot create a network namespace (unshare --net needs root or user namespaces); the fuzz run does not run unisolated"
  exec unshare --net -- env QUPER_FUZZ_IN_NAMESPACE=1 bash "$0" "$quper"
fi

ip link set lo up
exec "$python" infra/scripts/fuzz.py "$quper" "$st"
