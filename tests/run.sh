#!/usr/bin/env bash
# Runs every test: Rust unit + integration tests, then the Python oracle tier
# (attacks really fire in a subprocess; disasm/globals agree with CPython) and the
# integration tier (pre-commit hooks through the real pre-commit client, the GitHub Action's
# and the GitLab template's scripts against throw-away repositories; one test builds the
# `language: rust` hook through pre-commit, a few minutes).
# Needs the pinned Python packages: python3 -m pip install -r tests/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
cargo test --release --locked
# Microsoft's SARIF Multitool (npm, pinned) validates the SARIF output in tests/integrations.
if [ -z "${SARIF_MULTITOOL:-}" ]; then
  npm install --silent --no-audit --no-fund --prefix target/npm @microsoft/sarif-multitool@5.7.0 >/dev/null
  SARIF_MULTITOOL="$PWD/target/npm/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
  chmod u+x "$SARIF_MULTITOOL"
fi
export SARIF_MULTITOOL
# Two workers (pytest-xdist), whole files per worker: module fixtures stay in one process.
PICKLEGATE_BIN="$PWD/target/release/picklegate" python3 -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadfile tests/oracle tests/integrations
