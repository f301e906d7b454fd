"""CSV tables of the public datasets: plain or gzipped, header checked, rows streamed."""

from __future__ import annotations

import csv
import gzip
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from models.errors import DatasetError

__all__ = ["Table", "parse_code"]

logger = logging.getLogger(__name__)


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


class Table:
    """A CSV file whose header has been checked; iterating streams its rows as dicts.

    Parameters
    ----------
    path
        The ``.csv`` or ``.csv.gz`` file.
    required
        Column names the reader needs. A missing file, or a missing column, raises
        :class:`DatasetError` naming the file and the column.
    strip_names
        Strip spaces around the header's names (SIIM's ``ImageId, EncodedPixels``).

    Attributes
    ----------
    path
        The file.
    columns
        The header's names (stripped when ``strip_names``).
    """

    def __init__(self, path: Path, required: Sequence[str], *, strip_names: bool = False) -> None:
        self.path = path
        if not path.is_file():
            raise DatasetError(f"file {path} not found")
        try:
            with _open_text(path) as fh:
                header = next(csv.reader(fh), None)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"{path} cannot be read as CSV: {exc}") from exc
        if header is None:
            raise DatasetError(f"{path} is empty: expected a header with {', '.join(required)}")
        self.columns = tuple(name.strip() if strip_names else name for name in header)
        missing = [name for name in required if name not in self.columns]
        if missing:
            raise DatasetError(
                f"{path}: column {', '.join(repr(m) for m in missing)} missing "
                f"(header: {', '.join(self.columns)})"
            )
        self._needed = max(self.columns.index(name) for name in required) if required else -1

    def __iter__(self) -> Iterator[dict[str, str]]:
        """Yield each row as ``{column: value}``; a row too short for the needed columns raises."""
        try:
            with _open_text(self.path) as fh:
                rows = csv.reader(fh)
                next(rows, None)
                for row in rows:
                    if not row:
                        continue
                    if len(row) <= self._needed:
                        raise DatasetError(
                            f"{self.path}, line {rows.line_num}: {len(row)} fields, expected "
                            f"{len(self.columns)}"
                        )
                    yield dict(zip(self.columns, row, strict=False))
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"{self.path} cannot be read as CSV: {exc}") from exc

    def error(self, row: dict[str, str], column: str, problem: str) -> DatasetError:
        """Return an error naming the file, the column and the row (by its first value)."""
        first = next(iter(row.values()), "")
        return DatasetError(f"{self.path}: column {column!r} of the row of {first!r}: {problem}")

    def code(
        self, row: dict[str, str], column: str, allowed: tuple[int, ...] = (1, 0, -1)
    ) -> int | None:
        """Return the label code of a cell (see :func:`parse_code`), one of ``allowed`` or blank.

        Raises
        ------
        DatasetError
            For any other value, naming the file, the column and the row.
        """
        value = row[column]
        code = parse_code(value)
        if (code is None and value.strip()) or (code is not None and code not in allowed):
            codes = ", ".join(str(c) for c in allowed)
            raise self.error(row, column, f"{value!r} is not a label code ({codes} or blank)")
        return code


_CODES = {"1": 1, "1.0": 1, "0": 0, "0.0": 0, "-1": -1, "-1.0": -1}


def parse_code(value: str) -> int | None:
    """Return a CheXpert-style label code: 1, 0, -1, or ``None`` for blank or unknown text.

    Parameters
    ----------
    value
        ``1.0``, ``0.0``, ``-1.0`` (or without the ``.0``), or empty.

    Returns
    -------
    int or None
        The code; ``None`` when the cell is empty or not a code (:meth:`Table.code` tells the
        two apart).
    """
    return _CODES.get(value.strip())
