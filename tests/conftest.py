"""Fixtures for every test level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Hypothesis's 200 ms per example is a speed check, not a property: on the 2-core CI machine a busy moment
# (the e2e emulators run beside the unit tests under -n 2) made a routing property fail as "flaky" with no
# wrong answer. Speed belongs in bench/; the properties keep their example counts.
settings.register_profile("sfncopy", deadline=None)
settings.load_profile("sfncopy")


@pytest.fixture(autouse=True)
def _restore_sfncopy_logging() -> Iterator[None]:
    """The CLI routes the library's logs (``route_library_logs``) for its process; under CliRunner that
    process is the test run, so put the ``sfncopy`` logger back as it was after every test."""
    root = logging.getLogger("sfncopy")
    saved = (list(root.handlers), root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
