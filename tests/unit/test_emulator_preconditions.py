"""The conditional-write rules (gap 12) and the parts of a request they need."""

from __future__ import annotations

import pytest

from sfncopy.emulator.preconditions import bucket_and_key, key_lock, refusal, write_refusal


@pytest.mark.parametrize(("current", "if_none_match", "if_match", "answer"), [
    (None, "*", None, None),
    ('"e1"', "*", None, "PreconditionFailed"),
    ('"e1"', None, '"e1"', None),
    ('"e1"', None, "e1", None),  # quotes do not matter
    ('"e1"', None, '"e2"', "PreconditionFailed"),
    (None, None, '"e1"', "NoSuchKey"),
    ('"e1"', None, None, None),
])
def test_conditional_write_rules(current, if_none_match, if_match, answer):
    assert refusal(current, if_none_match, if_match) == answer


def test_unconditional_requests_and_other_operations_are_not_checked():
    assert write_refusal({}, "PutObject", "b", "k") is None
    assert write_refusal({"HTTP_IF_NONE_MATCH": "*"}, "DeleteObject", "b", "k") is None


def test_the_bucket_and_key_of_a_wsgi_path():
    assert bucket_and_key("/b/dir/a b+c.txt") == ("b", "dir/a b+c.txt")
    assert bucket_and_key("/b/caf\u00c3\u00a9") == ("b", "caf\u00e9")  # UTF-8 bytes as latin-1 text (PEP 3333)


def test_a_key_always_gets_the_same_lock():
    assert key_lock("b", "k") is key_lock("b", "k")
