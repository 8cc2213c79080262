"""What to do about a failure, by its error name (the text before the first colon of a report row's error or
a payload's recorded failure). Shown beside each failure in the HTML report."""

from __future__ import annotations

RERUN = "run the same config again: objects already copied are skipped, the rest are retried"

FIXES: dict[str, str] = {
    "AccessDenied": "grant the worker role the S3 action on this bucket and prefix (sfncopy policy shows the "
                    "roles' policies), or fix the bucket policy, then " + RERUN,
    "NoSuchKey": "the source object was deleted after planning; nothing to copy unless it comes back",
    "NoSuchBucket": "the bucket is gone or misnamed: fix s3_copy_config, then " + RERUN,
    "PreconditionFailed": "the source changed while it was copied (its ETag moved): " + RERUN,
    "SourceChanged": "the source changed while it was copied (its ETag moved): " + RERUN,
    "InvalidObjectState": "the source is archived (Glacier/Deep Archive): restore it first, then " + RERUN,
    "ObjectArchived": "the source is archived (Glacier/Deep Archive): restore it first, then " + RERUN,
    "VerificationError": "the target is missing or has the wrong size after the copy: " + RERUN,
    "NotRun": "the payload holding this object never finished (see the failed payloads): " + RERUN,
    "States.Timeout": "the worker Lambda timed out: lower options.max_payload_size_mb or raise the worker "
                      "timeout in the env file, then " + RERUN,
    "Sandbox.Timedout": "the worker Lambda timed out: lower options.max_payload_size_mb or raise the worker "
                        "timeout in the env file, then " + RERUN,
    "TransientError": "S3 kept throttling or failing after every retry: " + RERUN + " (fewer workers help)",
    "SlowDown": "S3 throttled the prefix: use fewer workers or spread keys over more prefixes, then " + RERUN,
}


def error_name(error: str) -> str:
    """'AccessDenied: ...' -> 'AccessDenied'; 'States.Timeout: ...' -> 'States.Timeout'."""
    return error.split(":", 1)[0].strip()


def fix_for(error: str) -> str:
    name = error_name(error)
    if name in FIXES:
        return FIXES[name]
    if name.startswith("Lambda."):
        return "the worker Lambda failed to run (throttled, out of memory or a service error): " + RERUN
    return "read the error, fix its cause, then " + RERUN
