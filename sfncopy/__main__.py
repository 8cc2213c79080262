"""``python -m sfncopy``: the same as the ``sfncopy`` command."""

from sfncopy.cli import main

main()
