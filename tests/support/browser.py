"""What the GraphiQL tests need from the machine: the vendored assets and Debian's Chromium.

Missing either fails the test under CI=true (`.ci/run` installs both) and skips it elsewhere.
"""

from pathlib import Path

import pytest

from taskql import ide_assets
from tests.support.database import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def missing(reason: str) -> None:
    """Fail under CI=true, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def require_ide_assets() -> None:
    """The GraphiQL assets are vendored (`make ide`, which needs npm)."""
    if not ide_assets.is_installed(ide_assets.load_manifest()):
        missing(f"GraphiQL's assets are not in {ide_assets.VENDOR_DIR}: run `make ide` (npm)")


def require_chromium() -> Path:
    """Debian's Chromium (apt-get install chromium)."""
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} is missing: apt-get install chromium")
    return CHROMIUM
