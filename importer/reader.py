"""Reading an uploaded CSV file: whole-file checks, header rules, records with line numbers.

`scan_file` checks the whole file before anything is inserted: a byte pass (NUL bytes, UTF-8,
line length) and a CSV pass (quoting, header, row count). `CsvSource` then reads records from a
checkpoint: a byte offset and a line number, which it reports after each batch so a job can
resume exactly there. Both stream the file; neither holds more than a chunk and a batch.
"""

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

REQUIRED_COLUMNS = ("project_id", "title", "description", "status", "assigned_to")
# A line, and a field, may not exceed this: it bounds memory when a quote is never closed.
MAX_LINE_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
SNIFF_BYTES = 8192  # a binary file shows NUL bytes early
_NAME_NOISE = re.compile(r"[\s_-]+")
_MIB = 1024 * 1024

# The csv module's own limit (128 KiB) would reject long fields that the row validation should
# report instead; the reader enforces MAX_LINE_BYTES.
csv.field_size_limit(MAX_LINE_BYTES)

Record = tuple[int, list[str]]  # the line the record starts on, and its cells


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
    def order(self) -> tuple[int, ...]:
        """The positions of the required columns, in REQUIRED_COLUMNS order."""
        return tuple(self.positions[name] for name in REQUIRED_COLUMNS)

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


def _is_blank(cells: list[str]) -> bool:
    # Blank lines, and rows of empty cells that spreadsheets leave behind, are skipped.
    if cells and cells[0] and not cells[0].isspace():
        return False  # the usual case, decided without a loop
    return not any(cell.strip() for cell in cells)


def _whole_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The file in chunks of about CHUNK_BYTES that end at a line break (or the end)."""
    line = 1
    while chunk := stream.read(CHUNK_BYTES):
        while not chunk.endswith(b"\n"):
            more = stream.readline(MAX_LINE_BYTES + 1)
            chunk += more
            if not more:
                break
            if len(more) > MAX_LINE_BYTES:
                line += chunk.count(b"\n", 0, len(chunk) - len(more))
                raise FileProblem(f"Line {line} is longer than {MAX_LINE_BYTES // _MIB} MiB.")
        yield chunk
        line += chunk.count(b"\n")


def check_bytes(stream: BinaryIO) -> None:
    """NUL bytes, UTF-8 and line length, at the speed of `bytes` methods."""
    if b"\x00" in stream.read(SNIFF_BYTES):
        raise FileProblem("This is a binary file (it contains NUL bytes), not CSV text.")
    stream.seek(0)
    line = 1
    for chunk in _whole_lines(stream):
        nul = chunk.find(b"\x00")
        if nul >= 0:
            line += chunk.count(b"\n", 0, nul)
            raise FileProblem(f"Line {line} contains a NUL byte: this is not CSV text.")
        try:
            codecs.decode(chunk, "utf-8")
        except UnicodeDecodeError as exc:
            line += chunk.count(b"\n", 0, exc.start)
            column = exc.start - chunk.rfind(b"\n", 0, exc.start)
            raise FileProblem(
                f"Line {line} is not valid UTF-8 (byte 0x{chunk[exc.start]:02X} at position "
                f"{column}). Save the file as UTF-8 and upload it again."
            ) from None
        line += chunk.count(b"\n")


def csv_problem(exc: csv.Error, start: int, line: int) -> FileProblem:
    """A clear message for a csv module error in the record that starts on line `start`."""
    text = str(exc)
    if "unexpected end of data" in text:
        return FileProblem(
            f"A quoted field that opens on line {start} is never closed: the file ends inside it."
        )
    if "field larger than field limit" in text:
        return FileProblem(
            f"A field that starts on line {start} is larger than {MAX_LINE_BYTES // _MIB} MiB: "
            "is a quote left open?"
        )
    if "new-line character" in text:
        return FileProblem(
            f"Line {line} has a carriage return inside an unquoted field: use CRLF or LF line "
            "endings, and quote fields that contain line breaks."
        )
    return FileProblem(
        f"Broken CSV quoting on line {line} ({text}). "
        'A field containing quotes must be quoted, with each quote doubled ("").'
    )


class NewlineCounter:
    """Turns "N more lines were read" into a byte offset, by counting line breaks."""

    def __init__(self, stream: BinaryIO, offset: int) -> None:
        self._stream = stream
        self.offset = offset

    def close(self) -> None:
        """Close the counter's own file handle."""
        self._stream.close()

    def advance(self, lines: int) -> int:
        """The offset just after `lines` more line breaks (or the end of the file)."""
        self._stream.seek(self.offset)
        while lines > 0:
            chunk = self._stream.read(CHUNK_BYTES)
            if not chunk:
                break
            found = chunk.count(b"\n")
            if found < lines:
                lines -= found
                self.offset += len(chunk)
                continue
            at = -1
            for _ in range(lines):
                at = chunk.index(b"\n", at + 1)
            self.offset += at + 1
            lines = 0
        return self.offset


class CsvSource:
    """Records of one file from a checkpoint (offset, line) on; `offset`/`line` follow them."""

    def __init__(self, path: Path, *, offset: int = 0, line: int = 0) -> None:
        binary = path.open("rb")
        binary.seek(offset)
        # Only "\n" ends a line (as in check_bytes); "\r\n" stays for the csv module to handle.
        encoding = "utf-8-sig" if offset == 0 else "utf-8"
        self._text = io.TextIOWrapper(binary, encoding=encoding, newline="\n")
        self._reader = csv.reader(self._text, strict=True)
        self._counter = NewlineCounter(path.open("rb"), offset)
        self._base_line = line
        self.line = line
        self.offset = offset

    def close(self) -> None:
        """Close both file handles."""
        self._text.close()
        self._counter.close()

    def __enter__(self) -> "CsvSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_records(self, limit: int) -> list[Record]:
        """Up to `limit` non-blank records; fewer only at the end of the file."""
        records: list[Record] = []
        append = records.append
        reader = self._reader
        base = self._base_line
        start = reader.line_num
        try:
            for cells in reader:
                if not _is_blank(cells):
                    append((base + start + 1, cells))
                    if len(records) >= limit:
                        break
                start = reader.line_num
        except csv.Error as exc:
            raise csv_problem(exc, base + start + 1, base + reader.line_num) from None
        except UnicodeDecodeError:
            raise FileProblem("The file is no longer valid UTF-8 (did it change?).") from None
        return self._advance(records)

    def _advance(self, records: list[Record]) -> list[Record]:
        consumed = self._base_line + self._reader.line_num
        self.offset = self._counter.advance(consumed - self.line)
        self.line = consumed
        return records

    def count_rest(self) -> int:
        """How many non-blank records remain (for the scan; the checkpoint does not move)."""
        rows = 0
        reader = self._reader
        start = reader.line_num
        try:
            for cells in reader:
                if not _is_blank(cells):
                    rows += 1
                start = reader.line_num
        except csv.Error as exc:
            base = self._base_line
            raise csv_problem(exc, base + start + 1, base + reader.line_num) from None
        return rows


@dataclass(frozen=True, slots=True)
class Scan:
    """What a full pass over the file found: it is readable, with this header and row count."""

    header: Header
    rows: int
    data_offset: int
    data_line: int


def scan_file(path: Path) -> Scan:
    """Check the whole file (bytes, quoting, header) and count its rows.

    Runs before anything is inserted, so a file that fails here imports nothing.
    """
    with path.open("rb") as stream:
        if not stream.read(1):
            raise FileProblem("The file is empty.")
        stream.seek(0)
        check_bytes(stream)
    with CsvSource(path) as source:
        first = source.read_records(1)
        if not first:
            raise FileProblem("The file has no header row: it holds only blank lines.")
        header = parse_header([cell.strip() for cell in first[0][1]])
        data_offset, data_line = source.offset, source.line
        rows = source.count_rest()
    return Scan(header=header, rows=rows, data_offset=data_offset, data_line=data_line)
