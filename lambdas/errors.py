"""The sfncopy error tree.

Class names are a contract: the generated state machine's Retry and Catch match them by name (Lambda
reports an unhandled exception as ``errorType`` = the class name). ``tests/unit/test_contract.py`` checks
that every name the generator uses is defined here.
"""

from __future__ import annotations


class SfnCopyError(Exception):
    """Base of every error sfncopy raises on purpose."""


# --- Errors that fail the execution (not retried) --------------------------------------------------
class ConfigError(SfnCopyError):
    """The s3_copy_config is invalid. ``problems`` lists every problem as 'json.path: what is wrong, fix'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in s3_copy_config"
        super().__init__(head + ": " + "; ".join(self.problems))


class SettingsError(SfnCopyError):
    """A deployment setting (environment variable of a Lambda or of envs/ENV-env.sh) is missing or bad."""


class SourceNotFoundError(SfnCopyError):
    """A configured source bucket does not exist or cannot be listed."""


class PlanTooLargeError(SfnCopyError):
    """The work does not fit in one execution's history budget; the message says what to raise."""


class TooManyFailedObjectsError(SfnCopyError):
    """More objects failed than ``options.max_failed_objects`` allows; the message names the report."""


class VerificationError(SfnCopyError):
    """A target object does not match what was planned (size, or a multipart upload missing parts)."""


class FinalizeShardError(SfnCopyError):
    """A finalize shard left no summary: its child execution failed, so the report would miss its rows."""


# --- Errors the state machine retries ---------------------------------------------------------------
class TransientError(SfnCopyError):
    """A retryable failure that outlived the in-process retries (throttling, 5xx, timeouts)."""


class ManifestConflictError(TransientError):
    """The run's manifest could not be read or written consistently; retrying is safe."""


# --- Per-object errors: recorded for the object, the payload goes on --------------------------------
class ObjectError(SfnCopyError):
    """A permanent failure of one object; recorded in its result, never raised out of a worker."""

    code = "ObjectError"


class SourceChangedError(ObjectError):
    """The source no longer has the planned ETag (CopySourceIfMatch failed): nothing mixed was written."""

    code = "SourceChanged"


class AccessDeniedError(ObjectError):
    code = "AccessDenied"


class NoSuchKeyError(ObjectError):
    code = "NoSuchKey"


class ObjectArchivedError(ObjectError):
    """The object is in an archive tier (InvalidObjectState): restore it first."""

    code = "InvalidObjectState"


class NoSuchBucketError(ObjectError):
    code = "NoSuchBucket"


class NoSuchUploadError(ObjectError):
    """The multipart upload is gone (aborted by cleanup or a lifecycle rule)."""

    code = "NoSuchUpload"


class ChecksumMismatchError(ObjectError):
    """S3 refused to write a target whose bytes do not match the whole-object checksum sfncopy asked it to
    validate (BadDigest): a part was corrupted on its way. Nothing was written at the key (the upload is
    aborted). The worker copies the object once more before it reports this (lambdas/copying.py): a corrupted
    copy is most likely transient, one that is corrupted twice is a failed object, not a retry loop."""

    code = "ChecksumMismatch"


class TargetExistsError(ObjectError):
    """``overwrite: never``: the target was written by someone else after planning (If-None-Match: * failed).
    Reported as skipped ("exists"), never as a failure: nothing of theirs was overwritten."""

    code = "TargetExists"


class TargetChangedError(ObjectError):
    """``overwrite: if-different``: the target no longer has the ETag it had at planning (If-Match failed, or
    it was deleted). Reported as skipped ("target changed during the run"): see lambdas/copying.py."""

    code = "TargetChanged"


# Names the state machine's Retry lists besides Lambda's own service errors.
RETRYABLE_ERROR_NAMES: tuple[str, ...] = (TransientError.__name__, ManifestConflictError.__name__)
# Errors that end the execution at once (Catch -> Cleanup -> Fail) without retrying.
FATAL_ERROR_NAMES: tuple[str, ...] = (
    ConfigError.__name__,
    SettingsError.__name__,
    SourceNotFoundError.__name__,
    PlanTooLargeError.__name__,
    TooManyFailedObjectsError.__name__,
    VerificationError.__name__,
)
