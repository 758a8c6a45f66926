"""How list commands print: a table on a terminal, whole values when piped, JSON on request.

A table fits the terminal's width, so rich shortens long cells; a file or another program
needs every value whole. So a list prints

- with ``--json``: one JSON array of objects, the keys as in :class:`Column` ``key``;
- when stdout is not a terminal (``| grep``, ``> file``): tab-separated rows under a header of
  the same keys, every value whole (``-`` for a missing one);
- on a terminal: a rich table whose cells wrap instead of being cut.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from tradebrain.cli._shared import console

MISSING = "-"
"""What a missing value (None) prints as, in the table and in tab-separated rows."""


@dataclass(frozen=True)
class Column:
    """One column of a list: its JSON key, its table header, and how the table shows it."""

    key: str
    header: str
    numeric: bool = False
    show: Callable[[Any], str] = str
    """The value as the terminal table shows it (e.g. ``1,234`` for ``1234``)."""


def stdout_is_terminal() -> bool:
    """Return whether stdout is an interactive terminal (not a pipe, file or test runner)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str,
    as_json: bool = False,
) -> None:
    """Print ``rows`` as JSON, as tab-separated whole values when piped, else as a table.

    Parameters
    ----------
    rows
        One mapping per row holding at least every column's ``key``; values are what
        ``--json`` prints (numbers, ISO-8601 text, None), so keep them unformatted.
    columns
        The columns, in order.
    title
        The table's title (a terminal only).
    as_json
        Print one JSON array of objects (every key of every row) instead.
    """
    if as_json:
        sys.stdout.write(json.dumps([dict(row) for row in rows], default=str) + "\n")
        return
    if not stdout_is_terminal():
        lines = ["\t".join(column.key for column in columns)]
        lines += ["\t".join(_plain(row[column.key]) for column in columns) for row in rows]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(
            column.header, justify="right" if column.numeric else "left", overflow="fold"
        )
    for row in rows:
        table.add_row(
            *(
                MISSING if row[column.key] is None else column.show(row[column.key])
                for column in columns
            )
        )
    console.print(table)


def _plain(value: Any) -> str:
    if value is None:
        return MISSING
    return str(value).translate(_ONE_LINE)


_ONE_LINE = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
"""A tab or a line break inside a value would split its row."""
