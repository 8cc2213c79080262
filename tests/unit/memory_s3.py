"""An in-memory stand-in for the gateway's manifest calls (put/get JSON), for tests of what is written
and read back without moto: it keeps every object, counts the bytes and requests written, and can fail
chosen puts as S3 or a crash would."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from lambdas import errors
from lambdas.gateway import encode_json


class MemoryS3:
    def __init__(self, fail: Callable[[str], bool] = lambda key: False) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []  # keys, in the order they were written
        self.gets: list[str] = []
        self.bytes_written = 0
        self.fail = fail  # a put whose key it accepts raises instead of writing
        self._lock = threading.Lock()

    def put_json(self, bucket: str, key: str, data: Any) -> None:
        self.put_bytes(bucket, key, encode_json(data), "application/json")

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        if self.fail(key):
            raise errors.TransientError(f"write s3://{bucket}/{key}: injected failure")
        with self._lock:
            self.objects[key] = body
            self.puts.append(key)
            self.bytes_written += len(body)

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        with self._lock:
            self.gets.append(key)
            body = self.objects.get(key)
        return None if body is None else json.loads(body)

    def get_json(self, bucket: str, key: str) -> Any:
        data = self.get_json_or_none(bucket, key)
        if data is None:
            raise errors.ManifestConflictError(f"s3://{bucket}/{key} does not exist")
        return data

    def stored_bytes(self) -> int:
        """What a reader of the final state reads at most: every object's latest version."""
        return sum(len(body) for body in self.objects.values())
