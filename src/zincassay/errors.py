"""User-facing error types.

Every error a user can cause with their input (a bad file, a typo in the sample sheet)
derives from :class:`ZincassayError`. The command-line interface prints such errors as one
message and exits non-zero, without a Python traceback; anything else is a bug.
"""

from __future__ import annotations


class ZincassayError(Exception):
    """An expected problem with the user's input; the message says what and how to fix it."""


class ValidationError(ZincassayError):
    """The sample sheet or config has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) found" + (f" in {source}" if source else "")
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))
