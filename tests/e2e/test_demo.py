"""``sfncopy demo`` end to end: emulator, demo data, deploy, copy, byte-for-byte verification."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sfncopy() -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("sfncopy")
    if script.is_file():
        return [str(script)]
    found = shutil.which("sfncopy")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from sfncopy.cli import main; sys.argv[0] = 'sfncopy'; main()"]


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_verifies_everything(tmp_path):
    # GIVEN a checkout with the local environment  WHEN `sfncopy demo` runs (its own emulator, a free port)
    html = tmp_path / "demo.html"
    done = subprocess.run([*_sfncopy(), "demo", "--html", str(html)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    # THEN it exits 0 after verifying every target object
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "target objects verified" in done.stdout
    assert "demo verified in" in done.stdout
    # AND it ends by saying where the HTML report is, in S3 and the local copy it saved
    last = done.stdout.strip().splitlines()[-2:]
    assert last[0].startswith("HTML report: s3://") and last[0].split()[2].endswith("/report.html"), last
    assert last[1].startswith(f"HTML report saved to {html}"), last
    assert html.read_text(encoding="utf-8").count('class="lane"') >= 1
