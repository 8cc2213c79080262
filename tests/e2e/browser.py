"""Open a page in Debian's headless chromium (installed by scripts/install-tools.sh): its DOM after load, a
screenshot, and the console messages it logged (chromium's --enable-logging writes each as ``:CONSOLE``)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Loaded:
    dom: str
    console: list[str]  # every console message: errors, warnings, uncaught exceptions, failed loads


def chromium() -> str:
    """The chromium binary, or skip the test saying why (scripts/test.sh installs it; see install-tools.sh)."""
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (scripts/install-tools.sh installs Debian's chromium as root)")
    return found


def open_page(page: Path, screenshot: Path, width: int = 1100, height: int = 1600) -> Loaded:
    """Load ``page`` headless, with every host name unresolvable (a page that fetches anything logs a failed
    load); write its screenshot; its DOM and console messages."""
    done = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={width},{height}",
         f"--screenshot={screenshot}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Loaded(dom=done.stdout, console=console)
