"""pytest configuration for the Python oracle tests.

The helpers live in _oracle.py (same directory); pytest's default `prepend` import mode puts
this directory on sys.path, so test modules simply `import _oracle`."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _oracle  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "differential: needs the picklegate binary")


@pytest.fixture(scope="session")
def picklegate_bin():
    """Path of the picklegate binary: $PICKLEGATE_BIN or target/release/picklegate.

    Missing binary is a failure, not a skip."""
    p = Path(os.environ.get("PICKLEGATE_BIN", "target/release/picklegate"))
    if not p.is_absolute():
        p = _oracle.REPO / p
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"picklegate binary not found at {p} (build it, or set PICKLEGATE_BIN)")
    return p
