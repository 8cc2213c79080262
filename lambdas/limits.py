"""AWS limits and sfncopy defaults, named once, each with the reason it exists."""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

# --- S3 ---------------------------------------------------------------------------------------------
# CopyObject copies at most 5 GiB in one request; anything larger must be a multipart UploadPartCopy.
MAX_COPY_OBJECT_SIZE = 5 * GiB
# Every part but the last must be at least 5 MiB (S3 rejects CompleteMultipartUpload otherwise).
MIN_PART_SIZE = 5 * MiB
# One part (and so one UploadPartCopy byte range) may be at most 5 GiB.
MAX_PART_SIZE = 5 * GiB
# A multipart upload has at most 10,000 parts, numbered 1..10,000 (part numbers start at 1).
MAX_PARTS = 10_000
# The largest object S3 stores: 10,000 parts of 5 GiB would be more, but S3 caps objects at 5 TiB.
MAX_OBJECT_SIZE = 5 * TiB
# ListObjectsV2 returns at most 1,000 keys a page: a listing without pagination stops there.
LIST_PAGE_SIZE = 1_000
# ListParts returns at most 1,000 parts a page.
LIST_PARTS_PAGE_SIZE = 1_000
# An object has at most 10 tags; the x-amz-tagging header is limited, so large tag sets go via
# PutObjectTagging after the copy (2 KiB keeps us well inside the 8 KiB request-header budget).
MAX_TAGS = 10
MAX_TAGGING_HEADER_BYTES = 2 * KiB
# S3 serves >= 3,500 COPY/PUT and 5,500 GET/HEAD requests per second per prefix; beyond that it answers
# SlowDown, which we retry with backoff.
COPY_REQUESTS_PER_SECOND_PER_PREFIX = 3_500
# Storage classes whose objects must be restored before they can be read (CopyObject answers
# InvalidObjectState). GLACIER_IR is instantly readable and is not in this set.
ARCHIVED_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
# Intelligent-Tiering archive tiers show up only as ArchiveStatus on HeadObject / RestoreStatus.
ARCHIVED_ACCESS_TIERS = frozenset({"ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"})

# --- Lambda -----------------------------------------------------------------------------------------
# A Lambda invocation runs at most 900 s.
MAX_LAMBDA_TIMEOUT_SECONDS = 900
MIN_LAMBDA_MEMORY_MB = 128
MAX_LAMBDA_MEMORY_MB = 10_240
# The worker stops taking new work when less than this remains before its deadline, so in-flight
# copies finish and the checkpoint is written before Lambda kills the process. A part copy of up to
# the default part size completes well inside this margin.
DEFAULT_DEADLINE_MARGIN_SECONDS = 60.0

# --- Step Functions ---------------------------------------------------------------------------------
# State input and output are limited to 256 KiB: plans live in S3 and states carry pointers only.
MAX_STATE_PAYLOAD_BYTES = 256 * KiB
# A Standard execution has at most 25,000 history events; the planner refuses plans that would not fit.
MAX_HISTORY_EVENTS = 25_000
# We plan for at most this share of the history budget, leaving room for retries and continuations.
HISTORY_EVENT_BUDGET = 20_000
# History events one payload costs in a worker branch: Map iteration started/succeeded (2), the worker
# Task entered/scheduled/started/succeeded/exited (5), the Choice entered/exited (2) and the Succeed state
# entered/exited (2) (Step Functions API reference, HistoryEvent types). tests/functional/test_state_machine.py
# measures it on the interpreter's history; the slack lives in HISTORY_EVENT_BUDGET.
EVENTS_PER_PAYLOAD = 11
# Each extra invocation of the worker for the same payload (continuation or retry): Task 5 + Choice 2.
EVENTS_PER_CONTINUATION = 7
# Events of the fixed states (start, plan, parallel, finalize, end) and each branch's Map bookkeeping.
EVENTS_FIXED = 30
EVENTS_PER_BRANCH = 6
# A state machine definition is at most 1 MB.
MAX_DEFINITION_BYTES = 1_000_000

# --- sfncopy defaults (overridable by the environment and the s3_copy_config options) --------------
DEFAULT_MAX_PAYLOAD_SIZE_MB = 10 * 1024  # 10 GiB of copying per payload
DEFAULT_MAX_OBJECTS_PER_PAYLOAD = 1_000
DEFAULT_COPY_CUTOFF = MAX_COPY_OBJECT_SIZE  # objects above this are copied in parts
DEFAULT_PART_SIZE = 64 * MiB
DEFAULT_WORKER_THREADS = 16
# Cost model for binning: one request costs as much worker time as copying this many bytes. Server-side
# copies inside one region run at roughly 100+ MB/s per stream while a request round trip takes ~20-50 ms,
# so a tiny object costs about as much as a 4 MiB one.
REQUEST_COST_BYTES = 4 * MiB
# Bytes a worker is expected to copy per invocation, used only to estimate continuations for the
# history budget (a conservative 250 MB/s server-side for ~13 minutes).
EXPECTED_BYTES_PER_INVOCATION = 200 * GiB
