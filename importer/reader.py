"""Reading an uploaded CSV file: header rules, whole-file checks, and records with line numbers.

The reader works on bytes, one line at a time, so it knows the byte offset and line number at
the end of every record: a job checkpoints them and resumes by seeking there.
"""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

REQUIRED_COLUMNS = ("project_id", "title", "description", "status", "assigned_to")
# One record (a row, quoted newlines included) may not exceed this: it bounds memory when a
# quote is never closed and keeps a single field from swallowing the file.
MAX_RECORD_BYTES = 16 * 1024 * 1024
BOM = "\ufeff"
SNIFF_BYTES = 8192  # a binary file shows NUL bytes early
_NAME_NOISE = re.compile(r"[\s_-]+")

# The reader enforces MAX_RECORD_BYTES itself; the csv module's own limit (128 KiB) would
# reject the long fields the per-row validation should report instead.
csv.field_size_limit(MAX_RECORD_BYTES)


class FileProblem(Exception):
    """The whole file is unusable; the message says why, for the job's `message`."""


def column_key(name: str) -> str:
    """Header names match ignoring case, spaces, underscores and hyphens."""
    return _NAME_NOISE.sub("", name.strip().lower())


_REQUIRED_KEYS = {column_key(name): name for name in REQUIRED_COLUMNS}


@dataclass(frozen=True, slots=True)
class Header:
    names: tuple[str, ...]
    positions: dict[str, int]

    @property
    def extra(self) -> list[str]:
        """The ignored columns, by their name in the file."""
        used = set(self.positions.values())
        return [
            name or f"(unnamed column {i + 1})"
            for i, name in enumerate(self.names)
            if i not in used
        ]


def parse_header(cells: list[str]) -> Header:
    """Map the required columns to their positions, or say what is wrong with the header."""
    positions: dict[str, int] = {}
    for index, name in enumerate(cells):
        required = _REQUIRED_KEYS.get(column_key(name))
        if required is None:
            continue
        if required in positions:
            raise FileProblem(
                f"The header names the column {required} twice "
                f"(columns {positions[required] + 1} and {index + 1})."
            )
        positions[required] = index
    wanted = ", ".join(REQUIRED_COLUMNS)
    if not positions:
        raise FileProblem(
            f"The file has no header row: its first line must name the columns {wanted}."
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing:
        raise FileProblem(
            f"The header lacks the required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (it needs {wanted}, in any order)."
        )
    return Header(names=tuple(cells), positions=positions)


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    cells: list[str]


class CsvSource:
    """Records of one file from a byte offset on, with the offset and line after each."""

    def __init__(self, stream: BinaryIO, *, offset: int = 0, line: int = 0) -> None:
        stream.seek(offset)
        self._stream = stream
        self.offset = offset
        self.line = line
        self._record_bytes = 0
        self._record_start = line + 1
        self._reader = csv.reader(self._lines(), strict=True)

    def _lines(self) -> Iterator[str]:
        while True:
            raw = self._stream.readline(MAX_RECORD_BYTES + 1)
            if not raw:
                return
            self.line += 1
            self.offset += len(raw)
            self._record_bytes += len(raw)
            if self._record_bytes > MAX_RECORD_BYTES:
                raise FileProblem(
                    f"The row starting on line {self._record_start} is larger than "
                    f"{MAX_RECORD_BYTES // (1024 * 1024)} MiB: is a quote left open?"
                )
            yield self._decode(raw)

    def _decode(self, raw: bytes) -> str:
        if b"\x00" in raw:
            raise FileProblem(
                f"Line {self.line} contains a NUL byte: this is a binary file, not CSV text."
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileProblem(
                f"Line {self.line} is not valid UTF-8 (byte 0x{raw[exc.start]:02X} at position "
                f"{exc.start + 1}). Save the file as UTF-8 and upload it again."
            ) from None
        if self.line == 1 and text.startswith(BOM):
            text = text[1:]
        return text

    def next_record(self) -> Record | None:
        """The next non-blank record, or None at the end of the file."""
        while True:
            self._record_start = self.line + 1
            self._record_bytes = 0
            try:
                cells = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                raise self._quoting_problem(exc) from None
            # Blank lines, and rows of empty cells that spreadsheets leave behind, are skipped.
            if any(cells) and any(cell.strip() for cell in cells):
                return Record(line=self._record_start, cells=cells)

    def _quoting_problem(self, exc: csv.Error) -> FileProblem:
        if "unexpected end of data" in str(exc):
            return FileProblem(
                f"A quoted field that opens on line {self._record_start} is never closed: "
                "the file ends inside it."
            )
        if "new-line character" in str(exc):
            return FileProblem(
                f"Line {self.line} has a carriage return inside an unquoted field: "
                "use CRLF or LF line endings, and quote fields that contain line breaks."
            )
        return FileProblem(
            f"Broken CSV quoting on line {self.line} ({exc}). "
            'A field containing quotes must be quoted, with each quote doubled ("").'
        )

    def read_records(self, limit: int) -> list[Record]:
        """Up to `limit` records; fewer only at the end of the file."""
        records: list[Record] = []
        while len(records) < limit:
            record = self.next_record()
            if record is None:
                break
            records.append(record)
        return records


@dataclass(frozen=True, slots=True)
class Scan:
    """What a full pass over the file found: it is readable, with this header and row count."""

    header: Header
    rows: int
    data_offset: int
    data_line: int


def scan_file(path: Path) -> Scan:
    """Check the whole file (encoding, binary, quoting, header) and count its rows.

    Runs before anything is inserted, so a file that fails here imports nothing.
    """
    with path.open("rb") as stream:
        if b"\x00" in stream.read(SNIFF_BYTES):
            raise FileProblem("This is a binary file (it contains NUL bytes), not CSV text.")
        source = CsvSource(stream)
        first = source.next_record()
        if first is None:
            if source.offset == 0:
                raise FileProblem("The file is empty.")
            raise FileProblem("The file has no header row: it holds only blank lines.")
        header = parse_header([cell.strip() for cell in first.cells])
        data_offset, data_line = source.offset, source.line
        rows = 0
        while source.next_record() is not None:
            rows += 1
    return Scan(header=header, rows=rows, data_offset=data_offset, data_line=data_line)
