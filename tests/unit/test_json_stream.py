"""lambdas/json_stream.py by value: the elements of a JSON array from its bytes in any chunking, the offset
after each, a restart from any such offset, and the errors of bytes that are not an array."""

from __future__ import annotations

import json
import re

import pytest

from lambdas.json_stream import JsonStreamError, iter_array

ELEMENTS = [{"source_key": f"k{i}", "reason": "identical" if i % 2 else "ü 日本"} for i in range(20)] + [
    12345, -1.5e3, "text, with \"quotes\"", [1, [2]], None, True, {}]


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
def test_every_element_comes_back_whatever_the_chunks(size, ascii_only):
    # GIVEN an array as encode_json writes it (ASCII) or as UTF-8, cut into chunks of ``size`` bytes
    data = json.dumps(ELEMENTS, separators=(",", ":"), ensure_ascii=ascii_only).encode()
    # WHEN read as a stream THEN each element comes back, with the offset of the byte after it
    read = list(iter_array(chunked(data, size)))
    assert [value for value, _ in read] == ELEMENTS
    assert [end for _, end in read] == [len(json.dumps(ELEMENTS[:i + 1], separators=(",", ":"),
                                                       ensure_ascii=ascii_only).encode()) - 1
                                        for i in range(len(ELEMENTS))]


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_reading_again_from_an_offset_gives_the_elements_after_it(size):
    data = json.dumps(ELEMENTS, separators=(",", ":"), ensure_ascii=False).encode()
    for index, (_, end) in enumerate(iter_array([data])):
        # WHEN the bytes from that offset are read (a ranged GET) THEN the rest of the elements follow
        assert [v for v, _ in iter_array(chunked(data[end:], size), end)] == ELEMENTS[index + 1:]


def test_white_space_and_empty_arrays():
    assert list(iter_array([b" [ ] "])) == []
    assert list(iter_array([b"[", b" 1 ,\n\t2 ", b"]"])) == [(1, 3), (2, 8)]
    assert list(iter_array([b"[1]"[2:]], 2)) == []  # read from the offset after the last element


@pytest.mark.parametrize("data, message", [
    (b"", "expected '[', found the end of the file"),
    (b"{}", "expected '[', found '{'"),
    (b"[1,", "the array ends after a comma"),
    (b"[1 2]", "expected ',' or ']', found '2'"),
    (b"[1,]", "an element is not valid JSON"),
    (b'[{"a": 1}', "expected ',' or ']', found the end of the file"),
])
def test_bytes_that_are_not_an_array_are_refused_saying_where(data, message):
    with pytest.raises(JsonStreamError, match=re.escape(message)):
        list(iter_array(chunked(data, 2)))
