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
PICKLEGATE_BIN="$PWD/target/release/picklegate" python3 -m pytest -q tests/oracle tests/integrations
