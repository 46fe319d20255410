"""Many titles requests at once: pasted topics (one per line) or a CSV file, validated row by row.

Pure functions: text or bytes in, valid `TitlesInput`s and refused lines out. Line numbers are the
ones a person sees in their editor (the first line is 1; in a CSV file that is the header), and
each refused line keeps its text, so they can find and fix it (the Submit page puts pasted
refused lines back in the box).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pydantic

from queue_tasks.models import TitlesInput, describe_validation_error

# One batch is one transaction; beyond this many rows the submit (and the page) gets slow.
MAX_BULK_ROWS = 10_000
CSV_COLUMNS = ("topic", "audience", "tone", "count")
_DELIMITERS = (",", ";", "\t")
_SAVE_AS_UTF8 = "Save it as “CSV UTF-8” and upload it again."
Row = TypeVar("Row")


class BulkInputRefused(ValueError):
    """The whole input was refused (not text, no topic column, too many rows); nothing is submitted."""


@dataclass(frozen=True)
class RefusedLine:
    line: int
    reason: str
    text: str  # as pasted; a CSV row's cells joined by the file's separator


@dataclass
class BulkInput:
    requests: list[TitlesInput] = field(default_factory=list)
    refused: list[RefusedLine] = field(default_factory=list)

    def add(self, line: int, values: dict[str, object], text: str) -> None:
        try:
            self.requests.append(TitlesInput(**values))
        except pydantic.ValidationError as error:
            self.refused.append(RefusedLine(line, describe_validation_error(error), text))

    @property
    def refused_text(self) -> str:
        """The refused lines, one per line, as they were given: what is left to fix."""
        return "\n".join(refused.text for refused in self.refused)


def parse_pasted_topics(text: str, *, audience: str | None, tone: str | None, count: int) -> BulkInput:
    """One request per non-blank line; the shared audience, tone and count apply to every line."""
    batch = BulkInput()
    lines = enumerate(text.replace("\r\n", "\n").split("\n"), start=1)
    for number, line in _at_most_max_rows((number, line) for number, line in lines if line.strip()):
        batch.add(number, {"topic": line, "audience": audience, "tone": tone, "count": count}, line)
    if not batch.requests and not batch.refused:
        raise BulkInputRefused("No topics found: paste one topic per line.")
    return batch


def parse_titles_csv(data: bytes) -> BulkInput:
    """One request per non-blank row of a CSV file with a header row naming its columns.

    `topic` is required; `audience`, `tone` and `count` are optional, and a blank cell means
    the request's default. Commas, semicolons or tabs separate the cells.
    """
    text = _decode(data)
    lines = io.StringIO(text, newline="")  # splits on \n, \r\n and \r, as editors do
    header_line = next(lines, "")
    delimiter, columns = _read_header(header_line)
    batch = BulkInput()
    for number, cells in _at_most_max_rows(_numbered_rows(lines, delimiter)):
        text = delimiter.join(cells)
        if len(cells) > len(columns):
            reason = f"has {len(cells)} cells but the header names {len(columns)} columns (a topic with a comma needs quotes)"
            batch.refused.append(RefusedLine(number, reason, text))
        else:
            batch.add(number, _row_values(dict(zip(columns, cells))), text)
    if not batch.requests and not batch.refused:
        raise BulkInputRefused("The file has a header row but no rows to submit.")
    return batch


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BulkInputRefused(f"This file is UTF-16 text, not UTF-8. {_SAVE_AS_UTF8}")
    if b"\x00" in data:
        raise BulkInputRefused(f"This file is not text (a spreadsheet, an image or another binary file?). {_SAVE_AS_UTF8}")
    try:
        return data.decode("utf-8-sig")  # Excel writes a byte-order mark at the start
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BulkInputRefused(f"This file is not UTF-8 text (line {line} has byte 0x{data[error.start]:02x}). {_SAVE_AS_UTF8}") from None


def _read_header(header_line: str) -> tuple[str, list[str]]:
    """The delimiter that splits the header into known columns, and the columns in order."""
    candidates = []
    for delimiter in _DELIMITERS:
        columns = [name.strip().lower() for name in next(csv.reader([header_line], delimiter=delimiter), [])]
        if "topic" in columns:
            candidates.append((len(columns), delimiter, columns))
    if not candidates:
        found = f"“{header_line.strip()[:80]}”" if header_line.strip() else "an empty line"
        # "topic|audience" or "topic audience": the column is there, the separator is not one we read.
        hint = " Separate the cells with commas, semicolons or tabs." if "topic" in header_line.lower() else ""
        raise BulkInputRefused(
            f"The first line must be a header row naming a “topic” column (optional: audience, tone, count); found {found}.{hint}"
        )
    _, delimiter, columns = max(candidates)
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    if unknown:
        raise BulkInputRefused(
            f"Unknown column {unknown[0]!r} in the header row; the columns are {', '.join(CSV_COLUMNS)} (only topic is required)."
        )
    repeated = [name for name in CSV_COLUMNS if columns.count(name) > 1]
    if repeated:
        raise BulkInputRefused(f"The header row names the column {repeated[0]!r} twice.")
    return delimiter, columns


def _numbered_rows(lines: io.StringIO, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the line each starts on (a quoted cell may span several lines)."""
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        first_line = reader.line_num + 2  # +1 for the header, +1 for the line about to be read
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise BulkInputRefused(
                    f"Line {first_line} has a cell longer than {csv.field_size_limit():,} characters (a topic may have "
                    "at most 500); a quote (\") that is never closed turns the rest of the file into one cell. "
                    "Nothing was queued."
                ) from None
            raise BulkInputRefused(f"Line {first_line} cannot be read as CSV ({error}); nothing was queued.") from None
        if any(cell.strip() for cell in cells):
            yield first_line, cells


def _at_most_max_rows(rows: Iterable[tuple[int, Row]]) -> Iterator[tuple[int, Row]]:
    for index, row in enumerate(rows):
        if index == MAX_BULK_ROWS:
            raise BulkInputRefused(
                f"More than {MAX_BULK_ROWS:,} rows: nothing was queued. Split them into batches of at most {MAX_BULK_ROWS:,}."
            )
        yield row


def _row_values(row: dict[str, str]) -> dict[str, object]:
    """Blank optional cells mean the default; a blank topic is kept so it is reported."""
    values: dict[str, object] = {name: cell for name, cell in row.items() if name == "topic" or cell.strip()}
    if "count" in values:
        values["count"] = _as_whole_number(row["count"])
    return values


def _as_whole_number(cell: str) -> int | str:
    # A cell that is not a whole number stays text, so the model reports it as such.
    try:
        return int(cell)
    except ValueError:
        return cell
