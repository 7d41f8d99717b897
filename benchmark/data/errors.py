"""Data errors, and the counted bad-line policy shared by the raw-file parsers."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

BAD_LINE_POLICIES = ("error", "skip")


class DataError(ValueError):
    """A problem with the raw data or the cache, explained for the user (the runner prints it without traceback)."""


class BadLines:
    """Counts malformed lines of one file; raises at the first one under `error`, else skips and remembers a few.

    `max_fraction` guards the skip policy: when more than that fraction of a file's lines is bad (a wrong
    file, a wrong encoding), the run stops instead of producing a silently smaller dataset.
    """

    def __init__(self, path: Path, policy: str, max_fraction: float, examples: int = 5) -> None:
        if policy not in BAD_LINE_POLICIES:
            raise DataError(f"on_bad_line must be one of {BAD_LINE_POLICIES}, got {policy!r}")
        self.path = Path(path)
        self.policy = policy
        self.max_fraction = float(max_fraction)
        self.count = 0
        self.examples: list[str] = []
        self._max_examples = examples

    def bad(self, line_no: int, reason: str) -> None:
        """Record a bad line (1-based number); raises DataError under the `error` policy."""
        where = f"{self.path}:{line_no}: {reason}"
        if self.policy == "error":
            raise DataError(f"malformed line {where} (set dataset.on_bad_line=skip to skip and count such lines)")
        self.count += 1
        if len(self.examples) < self._max_examples:
            self.examples.append(where)

    def finish(self, total_lines: int) -> int:
        """Log the skipped lines and enforce `max_fraction`; returns the count."""
        if self.count:
            log.warning("%s: skipped %d malformed line(s) of %d, e.g. %s", self.path, self.count, total_lines,
                        "; ".join(self.examples))
        if total_lines and self.count > self.max_fraction * total_lines:
            raise DataError(
                f"{self.path}: {self.count} of {total_lines} lines are malformed (more than max_bad_fraction="
                f"{self.max_fraction}); wrong file, truncated or wrong encoding? First: {self.examples[0]}"
            )
        return self.count
