"""Where a dataset's files are, and the checks every engine's reader makes of them alike.

The engine-neutral half of reading input (SPEC §2): a table's files are found by name (``events.csv``,
``events/**/*.parquet``…) in a local directory or, with the Spark engine, behind a URL listed through
a :class:`FileTree`; each file's format and compression are told by its suffix. A CSV file's header
and a compressed file's stream are checked here, so both engines name a damaged file the same way.

Each engine turns the sources into a *raw table* with its own reader
(:mod:`pinsights.engine.duckdb.reader`, :mod:`pinsights.engine.spark.reader`), keeping one contract,
so that the portable rules (:mod:`pinsights.data.validate`) judge the same rows the same way:

- every contract column exists (a missing one is an :class:`InputError` naming it), but an
  optional column (:attr:`pinsights.data.tables.Column.optional`) that no file of the table has,
  which is then not a column of the raw table at all (the rules take its values as null);
- a table may be spread over files of several formats (a migration leaves Parquet and CSV side by
  side); text files may be compressed (``.gz``, ``.zst``, told by the suffix);
- CSV and JSON Lines fields are text exactly as written, so ids that are strings of digits stay
  strings ("007") and a number, a string and a nested JSON value are judged by the same rules;
- Parquet keeps its own types (no needless casts of 20M int64 ids) when a table is all Parquet;
- ``__source_file`` names the file every row came from (:data:`pinsights.data.tables.SOURCE_FILE`);
- a line that cannot be read as a row (the ``malformed`` rule) is a row too, with every contract
  column null, ``__malformed`` true, its raw text in ``__text`` and its line number in ``__line``,
  so that it is counted and judged with all the others and nothing is lost.

Input files are only ever opened for reading.
"""

from __future__ import annotations

import csv
import errno
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

import pyarrow as pa

from pinsights.data.tables import TABLES, Table

#: Accepted file name endings: (format, compression). Compression is told by the suffix alone.
SUFFIXES: dict[str, tuple[str, str | None]] = {
    ".parquet": ("parquet", None),
    ".csv": ("csv", None),
    ".csv.gz": ("csv", "gzip"),
    ".csv.zst": ("csv", "zstd"),
    ".jsonl": ("jsonl", None),
    ".jsonl.gz": ("jsonl", "gzip"),
    ".jsonl.zst": ("jsonl", "zstd"),
}
WHAT_TO_DO = "export it again, or move it out of the dataset"


class InputError(Exception):
    """The dataset cannot be built at all: a missing table or column, an unreadable file."""


def unusable_path(message: str, code: int, path: object) -> InputError:
    """An :class:`InputError` for a data path that cannot be used at all (missing, a file, a URL
    no file system handles): its ``OSError`` cause gives it the exit status of an unusable path."""
    error = InputError(message)
    error.__cause__ = OSError(code, os.strerror(code), str(path))
    return error


#: ``scheme:/…`` with a scheme of two letters or more (``hdfs://nn/x``, ``s3a://bucket/x``,
#: ``file:///x``, ``viewfs://cluster/x``): a location only Hadoop's file systems (Spark) read.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(?=/)(?P<authority>//[^/]*)?(?P<path>/.*)?")


@dataclass(frozen=True, order=True)
class UrlPath:
    """A file or directory named by a URL (``hdfs://nn:8020/exports/events``): path-like enough
    for discovery and the readers (``name``, ``parent``, ``parts``, ``/``), and printed as the
    user wrote it, so ``__source_file`` shows a URL as a URL. Python never opens one: Spark lists
    and reads it through Hadoop's FileSystem API (:mod:`pinsights.engine.spark.reader`)."""

    root: str  # scheme and authority as written: "hdfs://nn:8020", "file://", "file:"
    path: PurePosixPath  # absolute

    @classmethod
    def parse(cls, text: str) -> UrlPath | None:
        """The URL in ``text``, or None when ``text`` is a local path."""
        match = _URL.fullmatch(text)
        if match is None:
            return None
        root = f"{match['scheme']}:{match['authority'] or ''}"
        return cls(root, PurePosixPath(match["path"] or "/"))

    @property
    def scheme(self) -> str:
        return self.root.split(":", 1)[0].lower()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parent(self) -> UrlPath:
        return UrlPath(self.root, self.path.parent)

    @property
    def parts(self) -> tuple[str, ...]:
        return self.path.parts

    def __truediv__(self, name: str) -> UrlPath:
        return UrlPath(self.root, self.path / name)

    def __str__(self) -> str:
        return self.root + str(self.path)


#: Where a dataset may be: a local (or mounted) path, or with the Spark engine a URL.
DataPath = Path | UrlPath


def data_path(text: str) -> DataPath:
    """``--data`` as given: a URL stays a URL (``Path`` would fold its ``//``)."""
    return UrlPath.parse(text) or Path(text)


@dataclass(frozen=True)
class InputFile:
    path: DataPath
    format: str  # parquet, csv or jsonl
    compression: str | None = None


def input_file(path: DataPath) -> InputFile | None:
    """The file's format and compression from its name, or None for a file that is not input."""
    name = path.name.lower()
    for suffix, (fmt, compression) in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return InputFile(path, fmt, compression)
    return None


@dataclass(frozen=True)
class TableSource:
    """Where one table's rows come from: one or more files, in one or several formats."""

    table: Table
    files: tuple[InputFile, ...]
    #: Every file of the table, when ``files`` are some of them read alone (a refresh reads only
    #: new files): an engine that can types them as a read of every file would (the columns a
    #: row is judged and quarantined with depend on the other files' formats); empty otherwise.
    typed_by: tuple[InputFile, ...] = ()

    @property
    def view(self) -> str:
        return f"raw_{self.table.name}"

    @property
    def formats(self) -> frozenset[str]:
        return frozenset(f.format for f in self.files)

    def of_format(self, fmt: str) -> tuple[InputFile, ...]:
        return tuple(f for f in self.files if f.format == fmt)


#: What a path is: a directory, a file, or nothing (missing, or neither: a broken link).
Kind = Literal["dir", "file"] | None


class FileTree(Protocol):
    """What discovery needs of a file system: the local one (:class:`LocalTree`) or, for a URL,
    Hadoop's (:class:`pinsights.engine.spark.reader.HadoopTree`)."""

    def kind(self, path: DataPath) -> Kind: ...

    def entries(self, directory: DataPath) -> list[tuple[DataPath, Kind]]:
        """The directory's entries, sorted by name, each with its kind."""
        ...

    def files_under(self, directory: DataPath) -> list[DataPath]:
        """Every file below ``directory`` (recursively, sorted) whose path below it has no part
        starting with ``.`` or ``_`` (hidden files, ``_SUCCESS``, ``_temporary/``)."""
        ...


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith((".", "_")) for part in parts)


class LocalTree:
    """The local file system (a mounted one included), through :mod:`pathlib`."""

    def kind(self, path: DataPath) -> Kind:
        assert isinstance(path, Path)
        return "dir" if path.is_dir() else "file" if path.exists() else None

    def entries(self, directory: DataPath) -> list[tuple[DataPath, Kind]]:
        assert isinstance(directory, Path)
        return [
            (path, "dir" if path.is_dir() else "file" if path.is_file() else None)
            for path in sorted(directory.iterdir())
        ]

    def files_under(self, directory: DataPath) -> list[DataPath]:
        assert isinstance(directory, Path)
        visible = [
            p for p in sorted(directory.rglob("*")) if not _hidden(p.relative_to(directory).parts)
        ]
        for path in visible:
            if input_file(path) is not None and _broken_link(path):
                raise broken_link(path)
        return [path for path in visible if path.is_file()]


def _broken_link(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def broken_link(path: Path) -> InputError:
    """A data file that is a symbolic link to nothing: refused, never skipped, since skipping it
    would build from part of a table without a word (a link to a mount that is not mounted)."""
    return InputError(
        f"{path} is a symbolic link to {os.readlink(path)}, which does not exist:"
        " mount or restore its target, or remove the link"
    )


def require_directory(data_dir: DataPath, tree: FileTree) -> None:
    """Refuse a data directory that is a file or missing, as an unusable path (exit status 3)."""
    kind = tree.kind(data_dir)
    if kind != "dir":
        code = errno.ENOTDIR if kind == "file" else errno.ENOENT
        reason = "is a file, not a directory" if kind == "file" else "does not exist"
        raise unusable_path(f"the data directory {data_dir} {reason}", code, data_dir)


def discover(data_dir: DataPath, tree: FileTree | None = None) -> dict[str, TableSource]:
    """Locate every table of the contract in ``data_dir``; a missing required table is an error.

    ``tree`` lists the files (the local file system when None); a URL needs Hadoop's, which only
    the Spark engine has, so without one a URL is refused.
    """
    if tree is None:
        if isinstance(data_dir, UrlPath):
            raise unusable_path(
                f"--data {data_dir} is a URL: the DuckDB engine reads local paths only; use"
                " --engine spark to read it through Spark (or a path where it is mounted)",
                errno.EPROTONOSUPPORT,
                data_dir,
            )
        tree = LocalTree()
    require_directory(data_dir, tree)
    entries = tree.entries(data_dir)
    sources: dict[str, TableSource] = {}
    for table in TABLES:
        source = _find(tree, data_dir, entries, table)
        if source is None:
            dangling = [
                p for p, kind in entries if kind is None and _names(p, table) and _broken(p)
            ]
            if dangling:
                assert isinstance(dangling[0], Path)
                raise broken_link(dangling[0])
            if table.optional:
                continue
            expected = ", ".join(f"{table.name}{ext}" for ext in SUFFIXES) + f" or {table.name}/"
            raise InputError(f"missing table '{table.name}': expected {expected} in {data_dir}")
        sources[table.name] = source
    if isinstance(tree, LocalTree):
        for source in sources.values():
            for file in source.files:
                _check_readable(file.path)
    return sources


def input_bytes(data_dir: DataPath) -> int | None:
    """The size of a local dataset's input files in all; None for a URL, or for a dataset that
    discovery refuses (the build says why when it reads the input)."""
    if isinstance(data_dir, UrlPath):
        return None
    try:
        files = [file.path for source in discover(data_dir).values() for file in source.files]
        return sum(path.stat().st_size for path in files if isinstance(path, Path))
    except (InputError, OSError):
        return None


def _check_readable(path: DataPath) -> None:
    """A local input file the build may open, else an error naming it (exit status of an
    unusable path), before any work: without this a file the build's user may not read was
    reported as "damaged or truncated", with an exit status that depended on its format."""
    assert isinstance(path, Path), "a local file"
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # never waits, whatever it is
    except PermissionError as error:
        raise unusable_path(
            f"cannot read {path}: permission denied to the user running the build;"
            " make it readable, or move it out of the dataset",
            errno.EACCES,
            path,
        ) from error


def _not_a_file(kind: Kind) -> str:
    """What an entry named like a table's file is, when it is not a file."""
    if kind == "dir":
        return "a directory (a table's folder is named after the table alone)"
    return "not a regular file"


def _find(
    tree: FileTree, data_dir: DataPath, entries: list[tuple[DataPath, Kind]], table: Table
) -> TableSource | None:
    for path, kind in entries:  # users.csv that is a folder, a FIFO… (a broken link: discover)
        if kind != "file" and _suffix_of(path.name) and _names(path, table) and not _broken(path):
            raise InputError(
                f"cannot read {path} (table '{table.name}'): it is {_not_a_file(kind)};"
                f" {WHAT_TO_DO}"
            )
    files = [
        found
        for path, kind in entries
        if kind == "file"
        and (found := input_file(path)) is not None
        and path.name.lower() == table.name + _suffix_of(path.name)
    ]
    directory = data_dir / table.name
    is_dir = any(kind == "dir" and path.name == table.name for path, kind in entries)
    candidates = [str(e.path.name) for e in files] + ([f"{table.name}/"] if is_dir else [])
    if len(candidates) > 1:
        raise InputError(
            f"table '{table.name}' is given more than once in {data_dir}"
            f" ({', '.join(candidates)}): keep one of them"
        )
    if files:
        return TableSource(table, (files[0],))
    if not is_dir:
        return None
    found_files = tuple(
        found for path in tree.files_under(directory) if (found := input_file(path)) is not None
    )
    if not found_files:
        raise InputError(
            f"table '{table.name}': directory {directory} holds no {', '.join(SUFFIXES)} file"
        )
    return TableSource(table, found_files)


def _names(path: DataPath, table: Table) -> bool:
    """Whether ``path``'s name is one a table's data could have: ``users.csv``, ``users/``…"""
    name = path.name.lower()
    return name == table.name or name == table.name + _suffix_of(name)


def _broken(path: DataPath) -> bool:
    return isinstance(path, Path) and _broken_link(path)


def _suffix_of(name: str) -> str:
    lowered = name.lower()
    return next((s for s in SUFFIXES if lowered.endswith(s)), "")


def unreadable(file: InputFile, error: Exception) -> InputError:
    """The error for a file that cannot be read at all: which file, why, and what to do."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InputError(
        f"cannot read {file.path}: {reason}. The file is damaged or truncated: {WHAT_TO_DO}."
    )


def check_stream(file: InputFile) -> None:
    """A compressed file must decompress to its end, intact.

    DuckDB reads a zstd stream cut short without a word, as if the file ended there; the lines
    after the cut would be lost without a trace. Decompressing once more here (in C, in 1 MiB
    chunks, output discarded) costs a fraction of parsing the text and finds a cut or corrupt
    stream — gzip's CRC included — before anything is read.
    """
    if file.compression is None:
        return
    try:
        with pa.input_stream(str(file.path), compression=file.compression) as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, pa.ArrowException) as error:
        raise unreadable(file, error) from error


def read_csv_header(file: InputFile) -> tuple[str, ...] | None:
    """The column names of a CSV file's header line (None for an empty file).

    Read here, not sniffed by DuckDB: a sniffer guesses from a sample, and a broken line in the
    sample would change its guess for the whole file.
    """
    try:
        with pa.input_stream(str(file.path), compression=file.compression) as stream:
            line = first_line(stream.read)
    except (OSError, pa.ArrowException) as error:
        raise unreadable(file, error) from error
    return csv_header(file, line)


def first_line(read: Callable[[int], bytes]) -> bytes:
    """The first line of a stream (without its line end), read in chunks from ``read``."""
    first = b""
    while b"\n" not in first and (chunk := read(1 << 16)):
        first += chunk
    return first.split(b"\n", 1)[0]


def csv_header(file: InputFile, line: bytes) -> tuple[str, ...] | None:
    """The column names in a CSV file's first line (None when it is blank): a UTF-8 BOM and a CR
    dropped, names starting ``__`` or repeated made unique."""
    try:
        text = line.removesuffix(b"\r").decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"cannot read {file.path}: its header line is not UTF-8 text ({error})"
        ) from error
    if not text.strip():
        return None
    names = next(csv.reader([text]))
    unique: list[str] = []
    for column in names:
        candidate, n = column, 1
        while candidate in unique or candidate.startswith("__"):
            n += 1
            candidate = f"{column}_{n}"
        unique.append(candidate)
    return tuple(unique)
