"""options.restore: archived sources restored with RestoreObject and copied in the same run.

``tiers`` holds what AWS documents about the retrieval tiers (restore times, which tier is refused where, the
Restore header) and the poll schedule as pure functions; ``stage`` is the restore branch's Lambda core.
"""
