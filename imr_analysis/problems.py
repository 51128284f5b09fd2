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


class RawDataError(ValueError):
    """Raised when raw exports cannot be turned into a cohort; lists every problem found."""

    def __init__(self, problems: list[Problem], max_shown: int = 50):
        self.problems = list(problems)
        shown = self.problems[:max_shown]
        lines = [f"{len(self.problems)} problem(s) in the raw exports; fix them and run again:"]
        lines += [f"  - {p}" for p in shown]
        if len(self.problems) > max_shown:
            lines.append(f"  ... and {len(self.problems) - max_shown} more")
        super().__init__("\n".join(lines))


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

    def raise_if_any(self) -> None:
        if self.problems:
            raise RawDataError(self.problems)
