"""WSGI middleware around moto's app: S3 request counting, IAM enforcement (``iam/``), injected SlowDown and
AccessDenied, the preconditions moto ignores (``preconditions.py``: copy-source If-Match, conditional writes, each
write of a key made under that key's lock), injected part-copy corruption (``faults.py``, ``checksums_bridge.py``),
the control endpoint.

Control endpoint (same port as the emulator; JSON in and out; ``sfncopy.emulator.control`` wraps it):
  ``GET    /_sfncopy/health``  ``{"ok": true}`` once the emulator serves requests
  ``GET    /_sfncopy/stats``   ``{"s3_requests": {op: n}, "s3_throttled": {op: n}, "lambda_invocations":
                               {function: n}, "faults_fired": [{"function", "invocation", "action", "error"}]}``
  ``DELETE /_sfncopy/stats``   reset the counters
  ``GET    /_sfncopy/faults``  the current fault plan (format: ``sfncopy.emulator.faults``)
  ``POST   /_sfncopy/faults``  replace it (400 with every problem named when it is invalid)
  ``DELETE /_sfncopy/faults``  no faults
  ``GET    /_sfncopy/restores``  ongoing and completed restores of archived objects (sfncopy.emulator.restores)
  ``POST   /_sfncopy/restores``  complete some or all, or set when they complete (400 when not understood)
  ``POST   /_sfncopy/schedules/<group>/<name>/fire[?region=R]``  start the schedule's target now, as EventBridge
                               Scheduler would (``scheduler_bridge.py``): ``{"executionArn", "schedule"}``; 403 with
                               the reason when its role may not, 404 for no such schedule, 409 when it is disabled
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from sfncopy.emulator import scheduler_bridge
from sfncopy.emulator.checksums_bridge import corrupting_part_copy
from sfncopy.emulator.faults import FaultPlan, FaultPlanError, FaultState
from sfncopy.emulator.preconditions import (
    KEY_WRITES,
    bucket_and_key,
    copy_source_changed,
    key_lock,
    parse_copy_source,
    write_refusal,
)
from sfncopy.emulator.restores import RESTORES, unreadable
from sfncopy.emulator.stats import Stats

CONTROL_PREFIX = "/_sfncopy/"
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# (environ, S3 operation) -> None to pass the request on, or the message of a 403 AccessDenied (iam/enforcement.py)
Authorize = Callable[[dict[str, Any], str], str | None]

# Bucket sub-resources (query keys) and the operation-name suffix they stand for.
_BUCKET_SUBRESOURCES = {
    "tagging": "Tagging", "policy": "Policy", "versioning": "Versioning", "lifecycle": "LifecycleConfiguration",
    "cors": "Cors", "encryption": "Encryption", "acl": "Acl", "notification": "NotificationConfiguration",
    "publicAccessBlock": "PublicAccessBlock", "ownershipControls": "OwnershipControls", "website": "Website",
    "logging": "Logging", "replication": "Replication", "object-lock": "ObjectLockConfiguration",
    "location": "Location", "accelerate": "AccelerateConfiguration", "requestPayment": "RequestPayment",
}
_OBJECT_SUBRESOURCES = {"tagging": "Tagging", "acl": "Acl", "retention": "Retention", "legal-hold": "LegalHold",
                        "attributes": "Attributes"}
# The S3 errors the emulator answers itself: (HTTP status line, Message).
_S3_ERRORS = {
    "SlowDown": ("503 Slow Down", "Please reduce your request rate."),
    "AccessDenied": ("403 Forbidden", "Access Denied"),
    "PreconditionFailed": ("412 Precondition Failed", "At least one of the pre-conditions you specified did not hold"),
    "NoSuchKey": ("404 Not Found", "The specified key does not exist."),
    # Amazon S3 API Reference, "RestoreObject", Special errors: 409 Conflict, RestoreAlreadyInProgress.
    "RestoreAlreadyInProgress": ("409 Conflict", "Object restore is already in progress"),
    # An archived object that is not restored (bridge 14): GetObject and HeadObject's codes for GLACIER
    # (API Reference, "GetObject": InvalidObjectState; "CopyObject": ObjectNotInActiveTierError, 403).
    "InvalidObjectState": ("403 Forbidden", "The operation is not valid for the object's storage class"),
    "ObjectNotInActiveTierError": ("403 Forbidden", "The source object of the COPY operation is not in the active "
                                                    "tier and is only stored in Amazon Glacier."),
}
_S3_ERROR_BODY = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                  "<RequestId>{request_id}</RequestId><HostId>sfncopy-emulator</HostId></Error>")


def s3_operation(method: str, path: str, query: Mapping[str, Any], copy_source: bool) -> str:
    """The S3 API operation of a path-style request (``/bucket/key?query``), e.g. ``UploadPartCopy``."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method.title()}Service"
    if key:
        return _object_operation(method, query, copy_source)
    return _bucket_operation(method, query)


def _object_operation(method: str, query: Mapping[str, Any], copy_source: bool) -> str:
    sub = next((_OBJECT_SUBRESOURCES[q] for q in query if q in _OBJECT_SUBRESOURCES), "")
    multipart = "uploadId" in query
    if method == "PUT":
        if multipart and "partNumber" in query:
            return "UploadPartCopy" if copy_source else "UploadPart"
        if sub:
            return f"PutObject{sub}"
        return "CopyObject" if copy_source else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if multipart:
            return "CompleteMultipartUpload"
        return "RestoreObject" if "restore" in query else "PostObject"
    if method == "GET":
        if multipart:
            return "ListParts"
        return f"GetObject{sub}"
    if method == "DELETE":
        if multipart:
            return "AbortMultipartUpload"
        return f"DeleteObject{sub}"
    return "HeadObject" if method == "HEAD" else f"{method.title()}Object"


def _bucket_operation(method: str, query: Mapping[str, Any]) -> str:
    sub = next((_BUCKET_SUBRESOURCES[q] for q in query if q in _BUCKET_SUBRESOURCES), "")
    if method == "GET":
        if "uploads" in query:
            return "ListMultipartUploads"
        if "versions" in query:
            return "ListObjectVersions"
        if sub:
            return f"GetBucket{sub}"
        return "ListObjectsV2" if query.get("list-type") in ("2", ["2"]) else "ListObjects"
    if method == "PUT":
        return f"PutBucket{sub}" if sub else "CreateBucket"
    if method == "DELETE":
        return f"DeleteBucket{sub}" if sub else "DeleteBucket"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return "HeadBucket" if method == "HEAD" else f"{method.title()}Bucket"


def signing_service(environ: Mapping[str, Any]) -> str:
    """The service a request is signed for (SigV4 header or presigned query), '' when unsigned."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    scope = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        scope = query.get("X-Amz-Credential", [""])[0]
    parts = scope.split("/")
    return parts[3].lower() if len(parts) == 5 else ""


def path_style(environ: Mapping[str, Any]) -> str:
    """The request path with a virtual-hosted bucket (``bucket.localhost``, ``bucket.s3...``) moved into it."""
    path = str(environ.get("PATH_INFO", "/")) or "/"
    host = str(environ.get("HTTP_HOST", "")).rsplit(":", 1)[0]
    for marker in (".localhost", ".s3.", ".s3-"):
        if marker in host:
            bucket = host.split(marker, 1)[0]
            if bucket and bucket != "s3":
                return f"/{bucket}{path}"
    return path


class EmulatorMiddleware:
    """Wraps moto's WSGI app; see the module docstring for the control endpoint."""

    def __init__(self, app: WsgiApp, faults: FaultState, stats: Stats, access_log: Path | None = None,
                 authorize: Authorize | None = None) -> None:
        self.app = app
        self.faults = faults
        self.stats = stats
        self.access_log = access_log
        self.authorize = authorize  # None: IAM is not enforced
        self._log_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        operation = ""
        if signing_service(environ) == "s3":
            query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
            operation = s3_operation(str(environ["REQUEST_METHOD"]), path_style(environ), query,
                                     copy_source="HTTP_X_AMZ_COPY_SOURCE" in environ)
            self.stats.count_s3_request(operation)
            denial = self.authorize(environ, operation) if self.authorize is not None else None
            if denial is not None:
                self.stats.count_s3_denied(operation)
                self._log(environ, operation, "403 AccessDenied (IAM)")
                return _s3_error(environ, start_response, "AccessDenied", denial)
            if self.faults.denied(path_style(environ).lstrip("/").split("/", 1)[0], operation):
                self.stats.count_s3_denied(operation)
                self._log(environ, operation, "403 AccessDenied (injected)")
                return _s3_error(environ, start_response, "AccessDenied")
            if self.faults.slow_down(operation):
                self.stats.count_s3_throttled(operation)
                self._log(environ, operation, "503 SlowDown (injected)")
                return _s3_error(environ, start_response, "SlowDown")
            if operation in ("CopyObject", "UploadPartCopy") and copy_source_changed(environ):
                self._log(environ, operation, "412 PreconditionFailed (copy source changed)")
                return _s3_error(environ, start_response, "PreconditionFailed")
            refusal = _archived_refusal(environ, operation)
            if refusal:
                self._log(environ, operation, f"403 {refusal} (bridge 14)")
                return _s3_error(environ, start_response, refusal)
            if operation == "RestoreObject" and RESTORES.ongoing(bucket_and_key(path_style(environ))) is not None:
                self._log(environ, operation, "409 RestoreAlreadyInProgress (bridge 14)")
                return _s3_error(environ, start_response, "RestoreAlreadyInProgress")
            if operation in KEY_WRITES:
                return self._write(environ, start_response, operation)
            if operation == "UploadPartCopy":
                return self._copy_part(environ, start_response, query)
        return self._pass(environ, start_response, operation)

    def _write(self, environ: dict[str, Any], start_response: StartResponse, operation: str) -> Iterable[bytes]:
        """A write of a key: its conditional headers checked and the write made under the key's lock (gap 12,
        preconditions.py)."""
        bucket, key = bucket_and_key(path_style(environ))
        with key_lock(bucket, key):
            refused = write_refusal(environ, operation, bucket, key)
            if refused is not None:
                status = _S3_ERRORS[refused][0]
                self._log(environ, operation, f"{status.split()[0]} {refused} (conditional write)")
                return _s3_error(environ, start_response, refused)
            return self._pass(environ, start_response, operation)

    def _copy_part(self, environ: dict[str, Any], start_response: StartResponse,
                   query: Mapping[str, list[str]]) -> Iterable[bytes]:
        """An UploadPartCopy, corrupted when the fault plan says so (faults.py, ``corrupt_parts``)."""
        bucket, key = bucket_and_key(path_style(environ))
        try:
            part_number = int(query.get("partNumber", ["0"])[0])
        except ValueError:
            part_number = 0
        if not self.faults.corrupts(bucket, key, part_number):
            return self._pass(environ, start_response, "UploadPartCopy")
        self._log(environ, "UploadPartCopy", f"part {part_number} corrupted (injected)")
        with corrupting_part_copy():
            return self._pass(environ, start_response, "UploadPartCopy")

    def _pass(self, environ: dict[str, Any], start_response: StartResponse, operation: str) -> Iterable[bytes]:
        """Hand the request to moto (logging its status when there is an access log)."""
        if self.access_log is None:
            return self.app(environ, start_response)

        def logging_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            self._log(environ, operation, status)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, logging_start_response)

    def _log(self, environ: Mapping[str, Any], operation: str, status: str) -> None:
        if self.access_log is None:
            return
        line = "\t".join([time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), str(environ.get("REQUEST_METHOD")),
                          str(environ.get("PATH_INFO")), operation or "-", status])
        with self._log_lock, self.access_log.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ["REQUEST_METHOD"])
        route = str(environ["PATH_INFO"])[len(CONTROL_PREFIX):].strip("/")
        if route == "health" and method == "GET":
            return _json(start_response, 200, {"ok": True})
        if route == "stats" and method == "GET":
            body = {**self.stats.snapshot(), "faults_fired": [f.to_dict() for f in self.faults.fired()]}
            return _json(start_response, 200, body)
        if route == "stats" and method == "DELETE":
            self.stats.reset()
            return _json(start_response, 200, {"ok": True})
        if route == "faults" and method == "GET":
            return _json(start_response, 200, self.faults.plan.to_dict())
        if route == "faults" and method == "DELETE":
            self.faults.clear()
            return _json(start_response, 200, self.faults.plan.to_dict())
        if route == "faults" and method == "POST":
            try:
                plan = FaultPlan.from_dict(json.loads(_read_body(environ) or b"null"))
            except (ValueError, FaultPlanError) as exc:  # JSONDecodeError is a ValueError
                return _json(start_response, 400, {"error": str(exc)})
            self.faults.set_plan(plan)
            return _json(start_response, 200, plan.to_dict())
        if route == "restores" and method == "GET":
            return _json(start_response, 200, RESTORES.snapshot())
        if route == "restores" and method == "POST":
            try:
                return _json(start_response, 200, RESTORES.control(json.loads(_read_body(environ) or b"null")))
            except ValueError as exc:  # RestoreControlError and JSONDecodeError are ValueErrors
                return _json(start_response, 400, {"error": str(exc)})
        fire = _FIRE_ROUTE.match(route)
        if fire and method == "POST":
            return _fire_schedule(start_response, fire.group(1), fire.group(2), environ)
        return _json(start_response, 404, {"error": f"no control route {method} {CONTROL_PREFIX}{route}; see "
                                                    "sfncopy.emulator.middleware"})


def _archived_refusal(environ: Mapping[str, Any], operation: str) -> str:
    """The error for reading or copying an Intelligent-Tiering object in an archive tier (bridge 14), or ""."""
    if operation == "GetObject":
        return "InvalidObjectState" if unreadable(*bucket_and_key(path_style(environ))) else ""
    if operation in ("CopyObject", "UploadPartCopy"):
        bucket, key = parse_copy_source(str(environ.get("HTTP_X_AMZ_COPY_SOURCE", "")))
        return "ObjectNotInActiveTierError" if key and unreadable(bucket, key) else ""
    return ""


# POST /_sfncopy/schedules/<group>/<name>/fire[?region=R]: fire a schedule now (bridge 16, scheduler_bridge.py).
_FIRE_ROUTE = re.compile(r"^schedules/([0-9A-Za-z_.-]+)/([0-9A-Za-z_.-]+)/fire$")


def _fire_schedule(start_response: StartResponse, group: str, name: str, environ: Mapping[str, Any]) -> list[bytes]:
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    region = query.get("region", ["us-east-1"])[0]
    try:
        return _json(start_response, 200, scheduler_bridge.fire(group, name, region=region))
    except scheduler_bridge.ScheduleFireError as err:
        return _json(start_response, err.status, {"error": str(err)})


def _read_body(environ: Mapping[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    return body


def _json(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _s3_error(environ: Mapping[str, Any], start_response: StartResponse, code: str,
              message: str | None = None) -> list[bytes]:
    """Answer the request with S3's error ``code`` (see ``_S3_ERRORS``), as S3 shapes it; ``message`` replaces
    the code's usual one."""
    _read_body(environ)  # drain the request so the kept-alive connection stays in step
    status, usual_message = _S3_ERRORS[code]
    request_id = uuid.uuid4().hex[:16].upper()
    data = _S3_ERROR_BODY.format(code=code, message=escape(message or usual_message),
                                 request_id=request_id).encode("utf-8")
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(data))),
                            ("x-amz-request-id", request_id)])
    return [data]
