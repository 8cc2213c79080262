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
# An SNS message is at most 256 KB: "messages must be UTF-8 encoded strings and at most 256 KB in size (262,144
# bytes, not 262,144 characters)" (Amazon SNS API reference, Publish, Message). A run summary stays far below it.
MAX_SNS_MESSAGE_BYTES = 262_144
# An execution's or a task's failure cause is at most 32,768 characters (AWS Step Functions API reference,
# ExecutionFailedEventDetails / TaskFailedEventDetails, cause: "Maximum length of 32768"): the longest cause a
# failure notification can carry.
MAX_ERROR_CAUSE_CHARACTERS = 32_768
# A failure notification carries the cause cut to this many characters (the whole cause is in failure.json): even
# JSON-escaped at 12 bytes a character (a surrogate pair as two \uXXXX escapes) that is 48 KiB, far below an SNS
# message's limit with the rest of the summary.
MAX_NOTIFIED_CAUSE_CHARACTERS = 4_096
# A Standard execution has at most 25,000 history events; the planner refuses plans that would not fit. Each
# child execution of a Distributed Map has its own history, separate from its parent's (Step Functions developer
# guide, "Using Map state in Distributed mode", key terms: "Each child workflow execution has its own execution
# history, which is separate from that of the parent workflow").
MAX_HISTORY_EVENTS = 25_000
# We plan for at most this share of the history budget, leaving room for retries and continuations.
HISTORY_EVENT_BUDGET = 20_000
# The parent execution's events no longer depend on the payloads: ExecutionStarted, Plan (Task: entered,
# scheduled, started, succeeded, exited), DryRun (Choice: entered, exited), Copy (Parallel: entered, started,
# succeeded, exited), StartFinalize (Pass 2), Finalize (Task 5), FinalizeDone (Choice 2), Finalized (Succeed 2)
# and ExecutionSucceeded are 24 (Step Functions API reference, HistoryEvent types); the rest is slack, for
# retries and the finalizer's continuations (7 each). tests/functional/test_state_machine.py measures them on
# moto's interpreter.
EVENTS_PARENT_FIXED = 30
# Each worker's Distributed Map in the parent: MapStateEntered, MapStateStarted, MapRunStarted, MapRunSucceeded,
# MapStateSucceeded, MapStateExited (measured likewise).
EVENTS_PER_WORKER = 6
# One payload's child execution: ExecutionStarted, the worker Task (entered, scheduled, started, succeeded,
# exited), the Choice (entered, exited), the Succeed state (entered, exited) and ExecutionSucceeded. moto keeps
# no child histories, so the test measures the child's state machine run as an execution of its own.
EVENTS_PER_CHILD = 11
# Each extra invocation of the worker for the same payload (continuation or retry): Task 5 + Choice 2. They
# all land in that payload's child history: a child can take (20,000 - 11) / 7, about 2,850 continuations.
EVENTS_PER_CONTINUATION = 7
# A child whose copy fails for good ends in RecordFailure<i> (Task 5) and PayloadFailed<i> (FailStateEntered, then
# ExecutionFailed) instead of the Choice, the Succeed state and ExecutionSucceeded: 13 events where a copied
# payload's child records 11 (measured likewise).
EVENTS_FAILED_CHILD_EXTRA = 2
# Each retry of a Task adds its LambdaFunctionScheduled, Started and Failed events (measured likewise).
EVENTS_PER_RETRY = 3
# A worker's Map returns one result per child to the parent: ``{}`` for a copied payload (the child's Succeed
# state has OutputPath null), its error for a failed one. Step Functions limits a state's result to 256 KiB and
# suggests ResultWriter when a Map Run's results exceed it (developer guide, "ResultWriter (Map)": "Exporting the
# results to an Amazon S3 bucket is helpful if your output payload size exceeds 256 KiB"); whether ResultPath
# null spares the parent that limit is unverified. 50,000 children of 3 bytes stay under half of it, which
# leaves room for the errors of some failed children; a worker with more payloads is refused at planning.
MAX_PAYLOADS_PER_WORKER = 50_000
# A Distributed Map runs at most 10,000 child executions at once, its default when MaxConcurrency is unset
# (developer guide, "Orchestrating large-scale parallel workloads": "If you don't specify, Step Functions runs
# 10,000 parallel child workflow executions in parallel"): the bound of a worker's concurrency.
MAX_MAP_CONCURRENCY = 10_000
# An account has at most 1,000 open Map Runs (Step Functions service quotas, quotas related to accounts,
# "Maximum open Map Runs: 1000; this quota applies to Distributed Map states"); each worker opens one.
MAX_OPEN_MAP_RUNS = 1_000
# Lambda's concurrency quota of a new account, per Region (Lambda developer guide, "Lambda quotas":
# "Concurrent executions: 1,000", raisable); used when the account's own figure cannot be read.
DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY = 1_000
# A state machine definition is at most 1 MB.
MAX_DEFINITION_BYTES = 1_000_000

# --- measured costs of sfncopy's stages (``sfncopy plan`` compares them with each stage's ceiling) ----------
# The planner's peak memory: 0.81 GB planning 1,000,000 objects (measured: bench/README.md, "Planner scale": peak
# RSS 0.81 GB, of which 0.35 GB before planning), taken as proportional to the objects listed.
PLANNER_GB_PER_MILLION_OBJECTS = 0.81
# botocore's parse of a 1,000-key ListObjectsV2 page, on top of S3's latency (measured: bench/README.md, 35-40 ms
# a page; the planner lists one page after another).
LIST_PAGE_PARSE_SECONDS = 0.0375
# S3's latency for one list page: S3 documents none; bench/README.md's simulated S3 draws it from 100-300 ms
# (modelled, not measured on AWS): the middle of that range.
LIST_PAGE_LATENCY_SECONDS = 0.2
# The finalizer's time per report row on AWS: ~40 us of its own work plus botocore's ~1.4 ms of CPU for the HEAD it
# sends per copied row when the targets are too large to list (measured: bench/README.md, "Finalizer scale").
FINALIZER_SECONDS_PER_ROW = 0.00144

# --- sfncopy defaults (overridable by the environment and the s3_copy_config options) --------------
DEFAULT_MAX_PAYLOAD_SIZE_MB = 10 * 1024  # 10 GiB of copying per payload
DEFAULT_MAX_OBJECTS_PER_PAYLOAD = 1_000
DEFAULT_COPY_CUTOFF = MAX_COPY_OBJECT_SIZE  # objects above this are copied in parts
DEFAULT_PART_SIZE = 64 * MiB
DEFAULT_WORKER_THREADS = 16
# Retries of every Task of the state machine (generator/state_machine.py, RetryTiming.max_attempts).
TASK_RETRY_ATTEMPTS = 6
# Cost model for binning: one request costs as much worker time as copying this many bytes. Server-side
# copies inside one region run at roughly 100+ MB/s per stream while a request round trip takes ~20-50 ms,
# so a tiny object costs about as much as a 4 MiB one.
REQUEST_COST_BYTES = 4 * MiB
# Bytes a worker is expected to copy per invocation, used only to estimate continuations for the
# history budget (a conservative 250 MB/s server-side for ~13 minutes).
EXPECTED_BYTES_PER_INVOCATION = 200 * GiB
