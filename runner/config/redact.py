"""Environment values never reach a message or a run file.

A model file may read the environment only when the command line allows it
(``allow_resolvers=[oc.env]``). Even then, every value ``oc.env`` hands out is remembered and
replaced by ``***`` in log messages, error messages, result.json and config.yaml.
"""

from __future__ import annotations

import logging
import os
from typing import Any

MASK = "***"
_values: set[str] = set()


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
    if value.strip():
        _values.add(value)


def text(message: str) -> str:
    """``message`` with every remembered value masked (longest first)."""
    for value in sorted(_values, key=len, reverse=True):
        message = message.replace(value, MASK)
    return message


def data(value: Any) -> Any:
    """Strings inside nested dicts and lists masked; numbers and other values unchanged."""
    if not _values:
        return value
    if isinstance(value, str):
        return text(value)
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
