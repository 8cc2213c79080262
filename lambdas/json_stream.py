"""Read the elements of a JSON array as its bytes arrive, one element at a time, each with the byte offset
just after it. Pure: the bytes come from any iterator (lambdas.gateway.S3Gateway.read_chunks in a Lambda).

A manifest file such as plan/skipped.json is one JSON array that may list millions of objects: parsed whole,
it holds them all in memory at once. Read here, memory holds one chunk of its text and one element. The
offsets let a reader that stopped (a finalizer near its deadline) start again at the next element with a
ranged GET instead of reading the file from its beginning.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

_WHITESPACE = frozenset(" \t\n\r")  # the JSON grammar's insignificant white space (RFC 8259, section 2)
_AFTER_ELEMENT = _WHITESPACE | {",", "]"}


class JsonStreamError(ValueError):
    """The bytes are not a JSON array (or not the rest of one, read from an element's end offset)."""


def iter_array(chunks: Iterable[bytes], start: int = 0) -> Iterator[tuple[Any, int]]:
    """Each element of the JSON array whose bytes from offset ``start`` on are ``chunks``, with the offset
    (in the whole file) of the byte after it. ``start`` is 0 (the file begins with ``[``) or an offset this
    function gave (what follows is ``,`` or the closing ``]``)."""
    return _Reader(chunks, start).elements()


class _Reader:
    def __init__(self, chunks: Iterable[bytes], start: int) -> None:
        self.chunks = iter(chunks)
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.decoder = json.JSONDecoder()
        self.text = ""  # decoded text not yet consumed starts at ``pos``
        self.pos = 0
        self.ascii = True  # whether ``text`` is ASCII (one byte per character): encode_json writes ASCII
        self.offset = start  # the byte offset in the file of text[pos]
        self.exhausted = False

    def elements(self) -> Iterator[tuple[Any, int]]:
        if self.offset == 0:
            self._expect("[")
            if self._peek() == "]":
                return
        else:
            if self._expect(",]") == "]":
                return
        while True:
            yield self._element(), self.offset
            if self._expect(",]") == "]":
                return

    def _more(self) -> bool:
        """Append the next chunk's text (dropping what was consumed); False when every byte is read."""
        if self.exhausted:
            return False
        chunk = next(self.chunks, None)
        self.exhausted = chunk is None
        tail = self.utf8.decode(chunk if chunk is not None else b"", final=chunk is None)
        self.text = self.text[self.pos:] + tail
        self.pos = 0
        self.ascii = self.text.isascii()
        return True

    def _peek(self) -> str:
        """The next character that is not white space ("" at the end), without consuming it."""
        while True:
            text, pos = self.text, self.pos
            while pos < len(text) and text[pos] in _WHITESPACE:
                pos += 1
            self.offset += pos - self.pos  # white space is ASCII: one byte a character
            self.pos = pos
            if pos < len(text):
                return text[pos]
            if not self._more():
                return ""

    def _expect(self, allowed: str) -> str:
        char = self._peek()
        if not char or char not in allowed:
            found = repr(char) if char else "the end of the file"
            raise JsonStreamError(f"byte {self.offset}: expected {' or '.join(map(repr, allowed))}, found {found}")
        self.pos += 1
        self.offset += 1
        return char

    def _element(self) -> Any:
        """Decode the element at ``pos``, reading more while it is cut off. An element is taken only when what
        follows it may follow an element (a comma, "]" or white space), or at the end of the bytes: a number
        cut at a chunk's end ("-1." of "-1.5e3") decodes as a shorter number."""
        if not self._peek():
            raise JsonStreamError(f"byte {self.offset}: the array ends after a comma")
        while True:
            try:
                value, end = self.decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as err:
                if self._more():
                    continue
                raise JsonStreamError(f"byte {self.offset}: an element is not valid JSON: {err}") from err
            if (end < len(self.text) and self.text[end] in _AFTER_ELEMENT) or not self._more():
                break
        size = end - self.pos if self.ascii else len(self.text[self.pos:end].encode("utf-8"))
        self.pos = end
        self.offset += size
        return value
