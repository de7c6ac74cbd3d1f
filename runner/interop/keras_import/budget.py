"""The limits of an import, taken from the project's own, so a hostile file cannot exhaust
memory: architecture text is bounded like a config file (runner.config.guard), arrays by the
run's ``max_memory_mb`` (every declared shape is sized before anything is read)."""

from __future__ import annotations

from dataclasses import dataclass

from runner.config.guard import MAX_FILE_BYTES
from runner.data.budget import limit_text, size_text
from runner.errors import ConfigError

#: Architecture JSON/YAML (and a .keras archive's config.json): the limit of a config file.
MAX_TEXT_BYTES = MAX_FILE_BYTES
#: The run setting's default (conf/config.yaml); --max-memory-mb changes it.
DEFAULT_MAX_MEMORY_MB = 4096.0


@dataclass
class Budget:
    """Bytes an import may still read into memory (weights, and an archive's members)."""

    max_bytes: float
    used: float = 0.0

    def take(self, n_bytes: float, path: str, file: str, what: str) -> None:
        """Count ``n_bytes`` about to be read, or refuse them (nothing read yet)."""
        if self.used + n_bytes > self.max_bytes:
            raise ConfigError.one(
                path,
                f"{what} takes {size_text(n_bytes)}; with what was read before "
                f"({size_text(self.used)}) that is above {limit_text(self.max_bytes)}: "
                "a file this large is not a model of our layers, or raise --max-memory-mb",
                file,
            )
        self.used += n_bytes
