"""The documents' bodies after a snapshot's SQLite database (formats 3 and 4), and format 4's hash
table that locates them.

Format 3 puts every body after the database, one after the other, and finds one through the
``document_offsets`` table (an SQLite B-tree keyed by account and type), then reads it with one
``pread``. Format 4 adds, between the database and the bodies, a **hash table** of the same
places, so that the usual read — an account's own document — walks no B-tree and enters no SQLite
statement: it hashes the key, reads one 24-byte slot (memory mapped) and ``pread``\\ s the body.
Measured on a 100,000-account store, every request a distinct document: 12-16 µs of CPU less per
cold request than format 3's statement, in process and in the server (BENCHMARKS.md, *Cold reads*,
seventh round).

The table (``TABLE_HEADER`` then ``slots`` slots of ``SLOT``, little-endian):

- a slot holds an account id as an integer, its length in characters (so ``007`` is not ``7``),
  the insight type's code (``TYPE_CODES``; 0: an empty slot), and the body's place (offset from
  the body region's start, length);
- the key ``account * 4 + code`` is hashed by Fibonacci hashing, ``(key * GOLDEN mod 2**64) >>
  (64 - bits)``, to a home slot of ``2**bits`` (at least twice the entries); a slot taken sends
  an entry on to the next free one (linear probing, never wrapping: the table runs on past its
  home slots as far as its last entry, then one empty slot), so a lookup reads from its home slot
  on until it finds its key or an empty slot;
- only keys the API can ask for are in it: account ids of at most 18 ASCII digits (the contract's
  rule) and the three insight types. Any other document (the shared one, under the empty id) is
  read through ``document_offsets``, as in format 3; so is every other read (the account check,
  tools, ``store check``).

The table is mapped into memory when it is at most ``TABLE_MMAP_BYTES`` (48 bytes a document:
~5.6 million documents); a larger one is read a few slots at a time with ``pread``, so the
server's memory stays bounded whatever the store's size.
"""

from __future__ import annotations

import mmap
import os
import struct
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa


class SnapshotFileError(Exception):
    """A snapshot file that cannot be read as one (damaged, truncated, not a snapshot)."""


class SnapshotFileGone(SnapshotFileError):
    """The file is not there (a concurrent publish unlinked it): read the manifest again."""


#: Format 4's table: magic, bits (home slots = 2**bits), slots in all, entries.
TABLE_HEADER = struct.Struct("<8sB7xQQ")
TABLE_MAGIC = b"pinshash"
#: A slot: account id as an integer, body length, id length, type code, (padding), body start.
SLOT = struct.Struct("<QIBBxxQ")
#: The insight types' codes in the table (fixed by the format; 0 marks an empty slot).
TYPE_CODES = {"YOUR_TOTAL_AUDIENCE": 1, "YOUR_ENGAGED_AUDIENCE": 2, "PINTEREST_TOTAL_AUDIENCE": 3}
#: The longest account id in the table (the contract's ``ad_account_id``: at most 18 digits).
MAX_DIGITS = 18
GOLDEN = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
#: A table up to this size is mapped (the pages a server touches count in its resident memory).
TABLE_MMAP_BYTES = 256 * 1024 * 1024
#: Slots read at a time when the table is not mapped.
PREAD_SLOTS = 4
_SLOT_SIZE = SLOT.size
_TABLE_START = TABLE_HEADER.size  # the first slot, from the table's start
_unpack_slot = SLOT.unpack_from


def _hashable(ad_account_id: str) -> bool:
    return (
        0 < len(ad_account_id) <= MAX_DIGITS and ad_account_id.isdigit() and ad_account_id.isascii()
    )


def locator(documents: pa.Table) -> tuple[pa.Table, pa.ChunkedArray]:
    """The documents table without its bodies but with where each lies in the body region
    (bodies one after the other, in the table's order), and the bodies."""
    import pyarrow.compute as pc  # here: the server, which only reads, does not load it

    bodies = documents.column("body")
    lengths = pc.cast(pc.binary_length(bodies), pa.int64())
    # A null body (none is written) gets a null place. No scalar argument here (fill_null's
    # would be converted from Python, and pyarrow imports pandas to do it).
    ends = pc.cumulative_sum(lengths, skip_nulls=True)
    located = documents.drop_columns(["body"])
    located = located.append_column("body_start", pc.subtract(ends, lengths))
    return located.append_column("body_length", lengths), bodies


def hash_table(located: pa.Table) -> bytes:
    """Format 4's table (header and slots) of the places in ``located`` (see ``locator``).

    Vectorised (Arrow's kernels, then numpy): no Python value per document, and no Python value
    handed to pyarrow either, nor ``to_numpy`` (each makes pyarrow import pandas): numbers are
    read from the arrays' buffers (``_numbers``)."""
    import numpy as np  # here: only a writer needs it
    import pyarrow.compute as pc

    def _numbers(values: pa.Array | pa.ChunkedArray, kind: type) -> Any:
        """A numeric array without nulls as numpy sees its buffer (no copy)."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        assert values.null_count == 0
        return np.frombuffer(values.buffers()[1], kind)[values.offset : values.offset + len(values)]

    ids = located.column("ad_account_id").combine_chunks()
    starts = located.column("body_start")
    kinds = pc.dictionary_encode(located.column("insight_type").combine_chunks())
    codes_of = np.array(
        [TYPE_CODES.get(kind, 0) for kind in kinds.dictionary.to_pylist()] or [0], np.uint64
    )
    # digits only, with a place (a null body has none); at most MAX_DIGITS and a known type below
    keep = pc.and_(
        pc.and_(pc.ascii_is_decimal(ids), pc.is_valid(starts)), pc.is_valid(kinds.indices)
    )
    kept = pc.filter(ids, keep)
    digits = _numbers(pc.cast(pc.utf8_length(kept), pa.int64()), np.int64)
    numbers = _numbers(
        pc.cast(pc.utf8_slice_codeunits(kept, 0, MAX_DIGITS), pa.uint64()), np.uint64
    )
    codes = codes_of[_numbers(pc.cast(pc.filter(kinds.indices, keep), pa.int64()), np.int64)]
    chosen = (digits <= MAX_DIGITS) & (codes != 0)
    slot_type = np.dtype(
        {
            "names": ["key", "length", "digits", "code", "start"],
            "formats": ["<u8", "<u4", "u1", "u1", "<u8"],
            "offsets": [0, 8, 12, 13, 16],
            "itemsize": SLOT.size,
        }
    )
    entries = np.zeros(int(chosen.sum()), slot_type)
    entries["key"] = numbers[chosen]
    entries["code"] = codes[chosen]
    entries["digits"] = digits[chosen]
    entries["start"] = _numbers(pc.cast(pc.filter(starts, keep), pa.int64()), np.int64)[chosen]
    lengths = pc.cast(pc.filter(located.column("body_length"), keep), pa.int64())
    entries["length"] = _numbers(lengths, np.int64)[chosen]
    count = len(entries)
    bits = max(1, (2 * count - 1).bit_length())
    keys = entries["key"] * np.uint64(4) + entries["code"]
    home = (keys * np.uint64(GOLDEN)) >> np.uint64(64 - bits)  # wraps mod 2**64, as it should
    order = np.argsort(home, kind="stable")
    # linear probing, in home order: each entry at its home slot or right after the one before
    steps = np.arange(count, dtype=np.int64)
    place = np.maximum.accumulate(home[order].astype(np.int64) - steps) + steps
    slots = max(1 << bits, int(place[-1]) + 1 if count else 0) + 1
    table = np.zeros(slots, slot_type)
    table[place] = entries[order]
    return TABLE_HEADER.pack(TABLE_MAGIC, bits, slots, count) + table.tobytes()


def append_bodies(
    path: Path, bodies: pa.ChunkedArray, halfway: Callable[[], None], before: bytes = b""
) -> None:
    """The bodies after the database (``before`` them: format 4's table), as Arrow holds them
    (no copy into Python); ``halfway`` is called once half of their bytes are in the file."""
    wide = pa.types.is_large_binary(bodies.type)
    pieces = []
    for chunk in bodies.chunks:
        if len(chunk) == 0:
            continue
        offsets = pa.Array.from_buffers(
            pa.int64() if wide else pa.int32(),
            len(chunk) + 1,
            [None, chunk.buffers()[1]],
            offset=chunk.offset,
        )
        first, last = offsets[0].as_py(), offsets[-1].as_py()
        data = chunk.buffers()[2]
        if data is not None and last > first:
            pieces.append(memoryview(data)[first:last])
    half, written = sum(len(piece) for piece in pieces) // 2, 0
    with open(path, "ab") as handle:
        handle.write(before)
        for piece in pieces:
            if written <= half < written + len(piece):
                cut = half - written
                handle.write(piece[:cut])
                handle.flush()
                halfway()
                handle.write(piece[cut:])
            else:
                handle.write(piece)
            written += len(piece)


class Bodies:
    """The body region of a format-3 or 4 file: the file kept open, a body read with one
    ``pread``; and format 4's table. Shared by the file's connections (their ``pinsights_body``
    function), so it stays open while any of them is.

    ``keyed`` reads an account's own document through SQLite (format 3's read): format 4's
    ``own_document`` hands it the keys its table does not hold.
    """

    def __init__(
        self,
        path: Path,
        database_end: int,
        keyed: Callable[[str, str], bytes | None] | None = None,
    ) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as error:
            raise SnapshotFileGone(f"snapshot file {path} is gone") from error
        weakref.finalize(self, os.close, self.fd)
        self.path = path
        self.size = os.fstat(self.fd).st_size
        self.start = database_end
        self.table_at = database_end + TABLE_HEADER.size
        self.table: mmap.mmap | bytes | None = None
        self.shift = 64
        self.slots = self.entries = 0
        self._keyed = keyed
        if keyed is not None:
            self._open_table(database_end)

    def _open_table(self, at: int) -> None:
        header = os.pread(self.fd, TABLE_HEADER.size, at)
        if len(header) < TABLE_HEADER.size:
            raise SnapshotFileError(f"snapshot file {self.path} is truncated: no hash table")
        magic, bits, self.slots, self.entries = TABLE_HEADER.unpack(header)
        if magic != TABLE_MAGIC or not 0 < bits < 64 or self.slots <= 1 << bits:
            raise SnapshotFileError(f"snapshot file {self.path} has no valid hash table")
        self.shift = 64 - bits
        size = TABLE_HEADER.size + self.slots * SLOT.size
        if at + size > self.size:
            raise SnapshotFileError(
                f"snapshot file {self.path} is truncated: its hash table ends at byte"
                f" {at + size:,} of {self.size:,}"
            )
        self.start = at + size
        if size <= TABLE_MMAP_BYTES:  # ``at`` is the database's end: a whole number of pages
            self.table = mmap.mmap(self.fd, size, prot=mmap.PROT_READ, offset=at)

    def read(self, at: int | None, length: int | None) -> bytes | None:
        if at is None or length is None:
            return None
        body = os.pread(self.fd, length, self.start + at)
        if len(body) != length:
            raise SnapshotFileError(
                f"snapshot file {self.path} is truncated: a body ends at byte"
                f" {self.start + at + length:,} of {self.size:,}"
            )
        return body

    def own_document(self, ad_account_id: str, insight_type: str) -> bytes | None:
        """Format 4's usual read: an account's own document, or None. A key the table holds is
        one slot read (or a few: linear probing) and one ``pread``; any other goes to SQLite."""
        code = TYPE_CODES.get(insight_type)
        digits = len(ad_account_id)
        if (
            code is None
            or not 0 < digits <= MAX_DIGITS
            or not ad_account_id.isdigit()
            or not ad_account_id.isascii()
        ):
            keyed = self._keyed
            assert keyed is not None
            return keyed(ad_account_id, insight_type)
        key = int(ad_account_id)
        table = self.table
        if table is None:
            found = self.place(key, code, digits)
            return None if found is None else self.read(*found)
        at = _SLOT_SIZE * ((((key * 4 + code) * GOLDEN) & MASK64) >> self.shift) + _TABLE_START
        while True:
            found, length, found_digits, found_code, start = _unpack_slot(table, at)
            if found == key and found_code == code and found_digits == digits:
                body = os.pread(self.fd, length, self.start + start)
                # the usual read: one pread, no further call (a short one is raised by read)
                return body if len(body) == length else self.read(start, length)
            if not found_code:
                return None
            at += _SLOT_SIZE

    def place(self, key: int, code: int, digits: int) -> tuple[int, int] | None:
        """Where the table puts a body (start in the region, length), or None: read a few slots
        at a time by ``pread`` (a table too large to map, and ``store check``)."""
        slot = (((key * 4 + code) * GOLDEN) & MASK64) >> self.shift
        while True:
            if slot >= self.slots:
                raise SnapshotFileError(f"snapshot file {self.path}: its hash table runs out")
            chunk = os.pread(self.fd, SLOT.size * PREAD_SLOTS, self.table_at + SLOT.size * slot)
            if len(chunk) < SLOT.size:
                raise SnapshotFileError(f"snapshot file {self.path}: its hash table is cut short")
            for found, length, found_digits, found_code, start in SLOT.iter_unpack(
                chunk[: len(chunk) - len(chunk) % SLOT.size]
            ):
                if found == key and found_code == code and found_digits == digits:
                    return start, length
                if not found_code:
                    return None
            slot += PREAD_SLOTS

    def table_problem(
        self, located: Iterable[tuple[str, str, int | None, int | None]]
    ) -> str | None:
        """Format 4 (``store check``): what is wrong with the table, given every row of
        ``document_offsets`` (account, type, start, length); None when it agrees with them."""
        taken, at, end = 0, self.table_at, self.table_at + self.slots * SLOT.size
        last = b""
        while at < end:
            want = min(end - at, SLOT.size * 65536)
            chunk = os.pread(self.fd, want, at)
            if len(chunk) != want:
                return "its hash table is cut short"
            codes = chunk[13 :: SLOT.size]
            taken += len(codes) - codes.count(0)
            at += len(chunk)
            last = chunk[-SLOT.size :]
        if self.slots and last[13] != 0:
            return "its hash table's last slot is not empty"
        expected = 0
        for account, kind, start, length in located:
            code = TYPE_CODES.get(kind)
            if start is None or code is None or not _hashable(account):
                continue
            expected += 1
            if self.place(int(account), code, len(account)) != (start, length):
                return f"its hash table does not locate the document of {account!r}, {kind}"
        if taken != expected or self.entries != expected:
            return (
                f"its hash table holds {taken:,} documents (header: {self.entries:,}), its"
                f" locator {expected:,}"
            )
        return None
