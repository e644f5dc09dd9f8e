#!/usr/bin/env bash
# Creates ./.venv with the pinned Python tools the tests and benchmarks use.
# Idempotent: reinstalls only when infra/requirements-dev.txt changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
req=infra/requirements-dev.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
