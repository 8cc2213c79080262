"""Key ranges of a listing, and points between keys, in the order S3 lists them. Pure functions.

S3 lists keys in UTF-8 binary order (Amazon S3 user guide, "Listing object keys programmatically": "List
results are always returned in UTF-8 binary order"; Amazon S3 API reference, ListObjectsV2: "Objects are
returned sorted in an ascending order of the respective key names in the list"). UTF-8 keeps the order of
code points, and a key holds no surrogates (it is UTF-8), so Python's ``str`` comparison, code point by code
point, is S3's order: every comparison here is a plain ``<``.

A range is ``(start_after, end]`` on keys *relative to a prefix*, as ListObjectsV2 reads it: ``StartAfter``
is exclusive ("Amazon S3 starts listing after this specified key. StartAfter can be any key in the bucket",
API reference, ListObjectsV2), and a shard stops at the first key past ``end``. Boundaries need not be keys:
any string is a boundary, which is what lets a partition cut the key space where no key has been seen. (That
S3 takes a StartAfter naming no object is what s3-fast-list and S3P rely on, and moto does it; the reference
says only "any key in the bucket": unverified beyond that.) The order quote of the user guide is the one
s3-fast-list's README cites for the same purpose.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# A key's UTF-8 encoding is at most 1,024 bytes (Amazon S3 user guide, "Naming Amazon S3 objects").
MAX_KEY_BYTES = 1024
MAX_CHAR = "\U0010ffff"
_SURROGATES = range(0xD800, 0xE000)
# Characters read after the common prefix of two keys when placing points between them: enough to tell apart
# keys that differ late, few enough that the numbers stay small.
INTERPOLATION_DEPTH = 8


@dataclass(frozen=True)
class KeyRange:
    """Relative keys ``k`` with ``start_after < k <= end``; ``None`` is the start, or the end, of the prefix."""

    start_after: str | None = None
    end: str | None = None

    def contains(self, rel: str) -> bool:
        return (self.start_after is None or rel > self.start_after) and (self.end is None or rel <= self.end)

    def past_end(self, rel: str) -> bool:
        """Whether ``rel`` and every key after it lie beyond the range (a listing may stop there)."""
        return self.end is not None and rel > self.end

    def to_dict(self) -> dict[str, Any]:
        return {"start_after": self.start_after, "end": self.end}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyRange:
        return cls(start_after=data.get("start_after"), end=data.get("end"))


def ranges_between(boundaries: Iterable[str]) -> list[KeyRange]:
    """The ranges that sorted, distinct ``boundaries`` cut the whole key space into: ``(None, b0]``,
    ``(b0, b1]``, ..., ``(b_last, None]``. Disjoint, and together they hold every key exactly once."""
    points = list(boundaries)
    if any(a >= b for a, b in itertools.pairwise(points)):
        raise ValueError("boundaries must be strictly increasing")
    starts: list[str | None] = [None, *points]
    ends: list[str | None] = [*points, None]
    return [KeyRange(s, e) for s, e in zip(starts, ends, strict=True)]


def next_char(char: str) -> str | None:
    """The code point after ``char`` that may appear in a key (surrogates skipped); None after the last."""
    code = ord(char) + 1
    if code in _SURROGATES:
        code = _SURROGATES.stop
    return chr(code) if code <= ord(MAX_CHAR) else None


def common_prefix(a: str, b: str) -> str:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return a[:i]


def fits(point: str, longest_prefix_bytes: int) -> bool:
    """Whether ``point`` joined to a prefix of ``longest_prefix_bytes`` bytes is still a possible key, and
    so a StartAfter S3 can be asked for (keys are at most MAX_KEY_BYTES)."""
    return longest_prefix_bytes + len(point.encode()) <= MAX_KEY_BYTES


# --- points between keys --------------------------------------------------------------------------------
class Alphabet:
    """The characters seen in keys so far, position by position: points between two keys are built from the
    characters seen at each position, and widths are measured in that mixed radix, so a point between
    "img_0001" and "img_9999" is "img_5..." and a page of 1,000 counter keys reads as 1,000 steps of a
    base-10 digit, not of every character the listing holds. Any character is still allowed (the ends' own
    characters are added where needed)."""

    def __init__(self, chars: Iterable[str] = (), positions: int = 256, limit: int = 512) -> None:
        self._all: set[str] = set()
        # Per folder ("a/b/", "" for the root), the characters seen at each position after it, and the
        # distinct stems (characters before the position) they were seen under, up to PADDING_EVIDENCE: a
        # position that keeps one digit under many stems is padding (see _with_classes). Keeping them per
        # folder keeps one folder's counter, running to 3,000,000, from widening every other folder's.
        self._dirs: dict[str, tuple[list[set[str]], list[set[str]]]] = {}
        self.positions = positions
        self.limit = limit
        self._mixed: set[str] | None = None  # derived from the root's columns; None when they may change it
        self.add(chars)

    @property
    def _at(self) -> list[set[str]]:
        return self._dirs.get("", ([], []))[0]

    def add(self, keys: Iterable[str]) -> None:
        for key in keys:
            key = key[:self.positions]
            for char in key:
                if len(self._all) >= self.limit:
                    break
                self._all.add(char)
            slash = -1
            while True:
                self._add_under(key, key[:slash + 1])
                slash = key.find("/", slash + 1)
                if slash < 0:
                    break

    def _add_under(self, key: str, folder: str) -> None:
        table = self._dirs.get(folder)
        if table is None:
            if len(self._dirs) >= MAX_FOLDERS:
                return
            table = self._dirs[folder] = ([], [])
        columns, stems = table
        for i in range(len(folder), len(key)):
            at = i - len(folder)
            if at == len(columns):
                columns.append(set())
                stems.append(set())
            if len(stems[at]) < PADDING_EVIDENCE:
                stems[at].add(key[:i])
            if key[i] not in columns[at] and len(columns[at]) < self.limit:
                columns[at].add(key[i])
                if not folder:
                    self._mixed = None

    def _mixed_letters(self) -> set[str]:
        """Letters that share a position with digits somewhere (hexadecimal, base-36 names): they may stand
        at any position where digits were seen, though no page has shown them there yet. ("Share" means at
        least two of each, so one word's letter next to a counter does not count.)"""
        if self._mixed is None:
            mixed: set[str] = set()
            for seen in self._at:
                letters = {c for c in seen if c.isascii() and c.isalpha()}
                if len(letters) >= 2 and len(_DIGITS & seen) >= 2:
                    mixed |= _with_classes(letters)
            self._mixed = mixed
        return self._mixed

    def radix(self, start: int, depth: int, *ends: str) -> list[list[str]]:
        """The sorted characters of each position ``start .. start + depth - 1`` (with the ``ends``' own
        characters there): position i is a digit of base ``len(radix[i])``. The characters are those seen
        in the innermost folder that holds the ends' common stem (``ends[0][:start]``), when it has seen
        that position; else the root's; else any character seen."""
        mixed = self._mixed_letters()
        stem = ends[0][:start] if ends else ""
        folder = stem[:stem.rfind("/") + 1]
        while folder and folder not in self._dirs:
            folder = folder[:folder.rfind("/", 0, len(folder) - 1) + 1]
        columns: list[list[str]] = []
        for i in range(start, start + depth):
            seen, evidence = self._seen(folder, i)
            chars = _with_classes(seen, evidence) | {end[i] for end in ends if i < len(end)}
            if len(_DIGITS & seen) >= 2:
                chars |= mixed
            columns.append(sorted(chars) if chars else [" "])
        return columns

    def _seen(self, folder: str, i: int) -> tuple[set[str], int]:
        for where in (folder, ""):
            table = self._dirs.get(where)
            at = i - len(where)
            if table is not None and 0 <= at < len(table[0]) and table[0][at]:
                return table[0][at], len(table[1][at])
        return self._all, 0

    def top(self) -> str:
        """A one-character string above every key whose first character was seen."""
        chars = sorted(self._at[0]) if self._at else []
        above = next_char(chars[-1]) if chars else None
        return above or MAX_CHAR


_DIGITS = frozenset("0123456789")
_LETTERS = ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


# Different stems under which a position showed one single digit before it counts as padding, not as a
# digit that has not varied yet.
PADDING_EVIDENCE = 32
# Folders an Alphabet keeps characters for (beyond them, the root's characters stand in).
MAX_FOLDERS = 4096


def _with_classes(seen: set[str], evidence: int = 0) -> set[str]:
    """``seen`` with the characters it probably holds but the pages read so far need not have shown: every
    digit once one is seen (a counter: the first page of "obj-0000000" shows only "0" where later keys
    show 1-9), and the letters between the smallest and largest seen of each case ("a" and "f" make a-f:
    hexadecimal names stay base 16). A position that has shown one single digit under ``evidence`` >=
    PADDING_EVIDENCE different stems (in many folders, not many keys of one) is padding
    ("folder/0000012345": a counter zero-padded wider than it runs), with no width."""
    chars = set(seen)
    digits = _DIGITS & seen
    if len(digits) >= 2 or (digits and evidence < PADDING_EVIDENCE):
        chars |= _DIGITS
    for letters in _LETTERS:
        present = [i for i, letter in enumerate(letters) if letter in seen]
        if present:
            chars.update(letters[present[0]:present[-1] + 1])
    return chars


def _value(text: str, start: int, columns: list[list[str]]) -> int:
    """``text`` after ``start`` as a number whose i-th digit is the rank of its character among ``columns[i]``
    (a missing character counts as the smallest): no value is wasted on digits no key holds, so a width
    that crosses a carry ("0499..." to "0500...") is measured as the keys count it."""
    value = 0
    for i, chars in enumerate(columns):
        j = start + i
        digit = chars.index(text[j]) if j < len(text) else 0
        value = value * len(chars) + digit
    return value


def _text(value: int, columns: list[list[str]]) -> str:
    digits: list[int] = []
    for chars in reversed(columns):
        value, digit = divmod(value, len(chars))
        digits.append(digit)
    digits.reverse()
    return "".join(chars[d] for d, chars in zip(digits, columns, strict=True))


def split_points(lo: str | None, hi: str, pieces: int, alphabet: Alphabet) -> list[str]:
    """Up to ``pieces - 1`` strictly increasing points strictly between ``lo`` (None: the start) and ``hi``,
    spread evenly in the alphabet's order after the two ends' common prefix (string interpolation, as S3P
    splits a key range it knows only by its ends). Fewer when the ends are too close to hold them."""
    low = lo or ""
    if pieces < 2 or low >= hi:
        return []
    stem = common_prefix(low, hi)
    start = len(stem)
    columns = alphabet.radix(start, INTERPOLATION_DEPTH, low, hi)
    a, b = _value(low, start, columns), _value(hi, start, columns)
    points: list[str] = []
    for j in range(1, pieces):
        point = stem + _text(a + (b - a) * j // pieces, columns)
        if low < point < hi and (not points or point > points[-1]):
            points.append(point)
    return points


def ladder(key: str, hi: str | None, limit: int) -> list[str]:
    """Points after ``key`` at every scale: ``key[:i] + next_char(key[i])`` for each position i, i.e. the end of
    the block of keys sharing ``key``'s first i+1 characters ("obj-0000999" gives "obj-000099:", ...,
    "obj-0001", "obj-001", "obj-01", "obj-1", "obj.", "obk", "p"). Probed together, they find where a
    listing ends and how dense it is at each level in one round, whatever the keys' depth (a delimiter
    walk down "/" levels finds the same boundaries, one level per request). Only points below ``hi``;
    at most ``limit``, the finest and the coarsest always among them."""
    points: list[str] = []
    for i in range(len(key) - 1, -1, -1):
        following = next_char(key[i])
        if following is None:
            continue
        point = key[:i] + following
        if (hi is None or point < hi) and (not points or point > points[-1]):
            points.append(point)
    if len(points) <= limit:
        return points
    if limit < 2:
        return points[-1:] if limit == 1 else []
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def gallop(top: str, limit: int = 12) -> list[str]:
    """One-character points above ``top`` at doubling distances (``top``, then +1, +3, +7, ... code points,
    surrogates skipped): probed together, they find in one round how far past the characters seen so far
    the keys' first characters go (a listing that began with "0"-"9" may go on to "a"-"f", or to "~")."""
    points: list[str] = []
    base = ord(top[0]) if top else 0
    for j in range(21):
        code = base + (1 << j) - 1
        if code in _SURROGATES:
            code = _SURROGATES.stop
        if code > ord(MAX_CHAR):
            break
        points.append(chr(code))
    if len(points) > limit:
        step = (len(points) - 1) / (limit - 1)
        points = [points[round(i * step)] for i in range(limit)]
    return sorted(set(points))


def span_ratio(a: str | None, b: str, c: str | None, alphabet: Alphabet) -> float:
    """How much wider ``(b, c]`` is than ``(a, b]`` in the alphabet's order (``a`` None: the start; ``c``
    None: the end, read as ``alphabet.top()``, just above every first character seen): the estimate of how
    many keys ``(b, c]`` holds per key of ``(a, b]``. Infinite when ``(a, b]`` is too narrow to measure."""
    low = a or ""
    top = c if c is not None else alphabet.top()
    if top <= b:
        return 0.0
    stem = common_prefix(low, top)
    start = len(stem)
    # Deep enough to tell ``low`` from ``b``: keys of one dense page often share all but their last characters.
    depth = min(max(len(common_prefix(low, b)) - start + 4, INTERPOLATION_DEPTH), 64)
    columns = alphabet.radix(start, depth, low, b, top)
    va, vb, vc = (_value(t, start, columns) for t in (low, b, top))
    if vb <= va:
        return float("inf")
    return max(0.0, (vc - vb) / (vb - va))
