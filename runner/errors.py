"""Errors a user can cause, each carrying the config path (and file) where it happened.

Exit codes: 0 ok, 1 the run failed or an ``expect`` check failed, 2 invalid config or data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str  # config path, e.g. "model.layers.dense.output_dim"
    message: str  # what was expected and what was found, and a fix when known
    file: str | None = None

    def __str__(self) -> str:
        where = f"{self.path} ({self.file})" if self.file else self.path
        return printable(f"{where}: {self.message}")


def printable(text: str) -> str:
    """``text`` on one line that cannot drive a terminal: control and format characters
    (newlines, ANSI escapes, NUL, bidi overrides) are shown escaped, as Python writes them."""
    from runner.config import redact

    text = redact.text(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class UserError(Exception):
    """Base of the errors the CLI turns into a message without a traceback."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, path: str, message: str, file: str | None = None) -> UserError:
        return cls([Problem(path, message, file)])


class ConfigError(UserError):
    """The config (or data it names) is invalid: found before anything is computed."""


class DataError(UserError):
    """Input data is unusable (NaN/Inf, wrong shape) once read."""


class RunFailed(UserError):
    """The model ran, but the run did not succeed (for example an ``expect`` check failed)."""

    exit_code = 1


def find_in_chain(exc: BaseException | None, kind: type) -> BaseException | None:
    """The first exception of ``kind`` in the cause/context chain of ``exc`` (Hydra wraps the
    errors our config code raises), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
