"""Fixtures for every test level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_sfncopy_logging() -> Iterator[None]:
    """The CLI routes the library's logs (``route_library_logs``) for its process; under CliRunner that
    process is the test run, so put the ``sfncopy`` logger back as it was after every test."""
    root = logging.getLogger("sfncopy")
    saved = (list(root.handlers), root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
