#!/usr/bin/env bash
# The README's test command: makes (or reuses) a virtual environment with the pinned
# Python packages, then runs every test (tests/run.sh) inside it. Prerequisites: Rust
# stable with cargo, Python 3.11 with venv and pip, git, Node.js with npm (SARIF
# Multitool), GNU tar. PICKLEGATE_VENV chooses the environment (default: .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PICKLEGATE_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
bash tests/run.sh
