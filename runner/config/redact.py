"""Environment values never reach a message or a run file.

A model file may read the environment only when the command line allows it
(``allow_resolvers=[oc.env]``). Even then, every value ``oc.env`` hands out is remembered and
replaced by ``***`` in log messages, error messages, result.json and config.yaml: the value
itself, the forms a message quotes it in (``repr`` and JSON escape backslashes and quotes), and
any piece of it of ``MIN_PIECE`` characters or more, so a message that shortens a long value
(``found 'abc...``) does not show its first 57 characters.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

MASK = "***"
MIN_PIECE = 8  # the shortest piece of a remembered value masked wherever it stands
_values: set[str] = set()
_pieces: set[str] = set()  # every MIN_PIECE-character window of every form of every value


def watch_environment() -> None:
    """Route ``oc.env`` through a recorder (idempotent)."""
    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    def env(key: str, default: Any = oc._DEFAULT_MARKER_) -> Any:
        value = oc.env(key) if default is oc._DEFAULT_MARKER_ else oc.env(key, default)
        if isinstance(value, str) and os.environ.get(key) == value:  # not the default
            remember(value)
        return value

    OmegaConf.register_new_resolver("oc.env", env, replace=True)


def remember(value: str) -> None:
    if not value.strip():
        return
    for form in (
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    ):
        _values.add(form)
        _pieces.update(form[i : i + MIN_PIECE] for i in range(len(form) - MIN_PIECE + 1))


def text(message: str) -> str:
    """``message`` with every remembered value masked (longest first), then every run of
    characters covered by pieces of them (a shortened or sliced value)."""
    if not _values:
        return message
    for value in sorted(_values, key=len, reverse=True):
        message = message.replace(value, MASK)
    covered = bytearray(len(message))
    for i in range(len(message) - MIN_PIECE + 1):
        if message[i : i + MIN_PIECE] in _pieces:
            covered[i : i + MIN_PIECE] = b"\x01" * MIN_PIECE
    if not any(covered):
        return message
    out, i = [], 0
    while i < len(message):
        if covered[i]:
            while i < len(message) and covered[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(message[i])
            i += 1
    return "".join(out)


def data(value: Any) -> Any:
    """Strings inside nested dicts and lists masked, and integers read from a remembered value;
    other values unchanged."""
    if not _values:
        return value
    if isinstance(value, str):
        return text(value)
    if isinstance(value, int) and not isinstance(value, bool) and _secret_number(value):
        return MASK  # a value read as a number (output_dim: ${oc.env:N})
    if isinstance(value, dict):
        return {text(k) if isinstance(k, str) else k: data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [data(v) for v in value]
    return value


class MaskFilter(logging.Filter):
    """A logging filter that masks remembered values in every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _values:
            record.msg = text(record.getMessage())
            record.args = ()
        return True


def _secret_number(value: int) -> bool:
    """An integer read from a remembered value, of 4 digits or more: a smaller one (an
    environment variable DEBUG=1) would mask every 0 or 1 of result.json (shapes, counts)."""
    digits = str(value)
    return len(digits.lstrip("-")) >= 4 and digits in _values
