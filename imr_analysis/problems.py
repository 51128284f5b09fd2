"""Problems found in raw exports, reported in words a researcher understands.

Every problem names the file, the line of the file (as a text editor numbers it, the
header and any marker line included), the column and the offending value. Validation
is lazy: problems are collected across all files and raised together.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem in one cell (or one file, when ``line`` is None)."""

    file: str
    line: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column '{self.column}'"
        shown = "" if self.value is None else f" (value: {self.value!r})"
        return f"{where}: {self.message}{shown}"


#: Where a researcher finds the accepted formats and the rule for each problem.
CONTRACT_HINT = "The raw-data contract (accepted formats, the rule for each problem) is in data/raw/README.md."


def missing_folder(path) -> Problem:
    """The problem reported when the raw data folder does not exist."""
    return Problem(str(path), None, None, None, "raw data folder does not exist")


class RawDataError(ValueError):
    """Raised when raw exports cannot be turned into a cohort; lists every problem found.

    ``str(err)`` is the readable list (file by file, in line order), so a notebook shows
    what to fix; ``err.problems`` holds the :class:`Problem` objects.

    Examples
    --------
    >>> err = RawDataError([Problem("form.csv", 4, "IMR stop date", "01/05/2019", "stop date is before start date")])
    >>> print(str(err).splitlines()[1])
      - form.csv, line 4, column 'IMR stop date': stop date is before start date (value: '01/05/2019')
    """

    def __init__(self, problems: list[Problem], max_shown: int = 50):
        self.problems = _in_reading_order(problems)
        shown = self.problems[:max_shown]
        lines = [f"{len(self.problems)} problem(s) in the raw exports; fix them and run again:"]
        lines += [f"  - {p}" for p in shown]
        if len(self.problems) > max_shown:
            lines.append(f"  ... and {len(self.problems) - max_shown} more")
        lines.append(CONTRACT_HINT)
        super().__init__("\n".join(lines))


def _in_reading_order(problems) -> list[Problem]:
    """Problems grouped by file (EFESO, Sister, form, then others as they came), then by line
    (file-level problems first); the order of problems on one line is kept."""
    from .constants import RAW_FILES

    order: dict[str, int] = {name: i for i, name in enumerate(RAW_FILES.values())}
    for p in problems:
        order.setdefault(p.file, len(order))
    return sorted(problems, key=lambda p: (order[p.file], -1 if p.line is None else p.line))


@dataclass
class ProblemLog:
    """Collects problems (fatal) and warnings (kept, reported) while reading and cleaning."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, file, line, column, value, message) -> None:
        self.problems.append(Problem(file, line, column, None if value is None else str(value), message))

    def warn(self, file, line, column, value, message) -> None:
        self.warnings.append(Problem(file, line, column, None if value is None else str(value), message))

    def errors_from_mask(self, file, lines, column, values, mask, message) -> None:
        """Record one problem for each True in ``mask`` (vectorised callers)."""
        import numpy as np

        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        for i in idx:
            self.error(file, int(lines[i]), column, values[i], message)

    def warn_lines(self, file, lines, column, message, limit: int = 10) -> None:
        """One warning for many rows: names the first ``limit`` lines (vectorised callers)."""
        lines = [int(x) for x in lines]
        if not lines:
            return
        shown = ", ".join(str(x) for x in lines[:limit])
        more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
        self.warn(file, lines[0], column, None, f"{message} ({len(lines)} row(s): line(s) {shown}{more})")

    def raise_if_any(self) -> None:
        if self.problems:
            raise RawDataError(self.problems)
