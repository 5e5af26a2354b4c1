"""Tables that stay whole on an 80-column terminal.

rich shortens a value that does not fit its column with an ellipsis, which cuts dates, IP
addresses, base ids and error messages. Every table here is built by `table()`: a value too
long for its column goes on to the next line instead (`overflow="fold"`), words wrap at spaces,
and the compact style (no outer frame, one rule under the header) leaves the columns the room.
A column marked `no_wrap` must hold short values only (ids, counts, statuses), as rich crops
what it cannot fit there.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Column, Table


def column(
    header: str,
    *,
    justify: JustifyMethod = "left",
    min_width: int | None = None,
    max_width: int | None = None,
    no_wrap: bool = False,
) -> Column:
    """A column whose values are never shortened (see the module's docstring)."""
    return Column(
        header,
        justify=justify,
        min_width=min_width,
        max_width=max_width,
        no_wrap=no_wrap,
        overflow="fold",
    )


def table(*columns: str | Column, title: str | None = None) -> Table:
    return Table(
        *(column(c) if isinstance(c, str) else c for c in columns),
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )


def grid() -> Table:
    """Label / value lines (`seatctl licence show`, `status`): values wrap, never shortened."""
    label = Column(style="bold", no_wrap=True)
    return Table.grid(label, column(""), padding=(0, 2))


def show(*renderables: object) -> None:
    Console().print(*renderables)
