"""The errors a dataset folder can produce: nothing there, or something broken there.

Both name the file or folder concerned and say how to fix it, so a user on a cluster without
internet knows exactly what to copy where.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """No usable copy of a dataset was found in any of the places we looked."""

    def __init__(
        self, dataset: str, looked_at: Iterable[Path | str], expected: Iterable[str], remedy: str
    ) -> None:
        self.looked_at = [str(p) for p in looked_at]
        self.expected = list(expected)
        places = "\n".join(f"  - {p}" for p in self.looked_at)
        files = ", ".join(self.expected)
        super().__init__(
            f"{dataset} not found. Looked at:\n{places}\n"
            f"expected there: {files}\n"
            f"To get it: {remedy}"
        )


class CorruptDatasetError(ValueError):
    """A dataset file exists but cannot be parsed (truncated, wrong format, wrong sizes)."""

    def __init__(self, path: Path | str, problem: str, remedy: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        hint = remedy or "replace it with an intact copy of the original file"
        super().__init__(f"cannot read dataset file {self.path}: {problem}; {hint}")


class UnreadableFilesError(CorruptDatasetError):
    """``verify=True`` found files that cannot be read; lists every one of them at once."""

    def __init__(self, dataset: str, failures: Iterable[tuple[str, str]]) -> None:
        self.failures = sorted(failures)
        self.path = self.failures[0][0] if self.failures else ""
        listing = "\n".join(f"  - {path}: {problem}" for path, problem in self.failures)
        ValueError.__init__(
            self,
            f"{dataset}: {len(self.failures)} unreadable file(s) found by verify=True:\n"
            f"{listing}\nreplace them with intact copies (e.g. re-extract them from the "
            "original archive)",
        )
