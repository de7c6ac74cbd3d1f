"""How many members a zip archive's central directory can list, read from its end records alone.

A .npz or .keras file is a zip archive, and ``zipfile`` parses its whole central directory
into objects before it can be asked anything: about 1 KB of memory per member. The directory's
size and member count are declared in the end-of-central-directory record (and in the ZIP64
end record, for large archives), so they can be checked first. Both count: ``zipfile`` reads
entries until it has consumed the declared size, whatever the declared count says, so a
forged count of 1 in front of a 100 MB directory would still make millions of objects. And
``zipfile`` takes a ZIP64 end record's counts whenever a ZIP64 locator precedes the plain
record, whatever the plain one says: every record a reader may take counts, the largest wins.

This reads the records itself, following the zip format's published layout (PKWARE's
APPNOTE, section 4.3.14-16), rather than ``zipfile``'s private helpers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_END = struct.Struct("<4s4H2LH")  # signature, disks, entries here, entries, size, offset, comment
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")  # ZIP64 end locator: signature, disk, record offset, disks
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end record, up to the central directory's offset
_END64_SIGNATURE = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF
#: The smallest central directory entry: its fixed header with empty name, extra and comment.
SMALLEST_ENTRY = 46
#: Memory one directory entry takes once ``zipfile`` has parsed it (a ZipInfo), bounded above.
ZIP_ENTRY_BYTES = 1024


@dataclass(frozen=True)
class Directory:
    """What the end records declare about the central directory."""

    entries: int  # the member count
    size: int  # bytes

    @property
    def most_members(self) -> int:
        """How many entries ``zipfile`` may parse: it reads until it has consumed ``size``
        bytes, whatever ``entries`` says."""
        return max(self.entries, self.size // SMALLEST_ENTRY)

    @property
    def parsed_bytes(self) -> int:
        """Memory the parsed directory may take, at most."""
        return self.most_members * ZIP_ENTRY_BYTES


def read_directory(path: Path) -> Directory | None:
    """The declared member count and size of the central directory of ``path``, the largest
    any of its end records declares. None: no end record where ``zipfile`` looks for one
    (not a zip, or one ``zipfile`` refuses for the same reason)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            file_size = f.tell()
            window = min(file_size, _END.size + _MAX_COMMENT + 1)  # zipfile's search window
            f.seek(file_size - window)
            tail = f.read(window)
            at = len(tail) - _END.size  # no comment: the record ends the file (zipfile's order)
            if not (tail[at:].startswith(_END_SIGNATURE) and tail[-2:] == b"\0\0"):
                at = tail.rfind(_END_SIGNATURE)
            if at < 0 or at + _END.size > len(tail):
                return None
            fields = _END.unpack_from(tail, at)
            entries, size = fields[4], fields[5]
            for entries64, size64 in _zip64_counts(f, file_size - window + at, file_size):
                entries, size = max(entries, entries64), max(size, size64)
    except OSError:
        return None
    return Directory(entries, size)


def _zip64_counts(f, end_at: int, file_size: int) -> list[tuple[int, int]]:
    """(entries, directory size) of each ZIP64 end record a reader may take when a ZIP64
    locator precedes the end record at ``end_at``: the one right before the locator (where
    ``zipfile`` reads it, whatever the plain record says) and the one the locator points to
    (where the format puts it). Both count, so no reader sees more than we do."""
    if end_at < _LOCATOR.size:
        return []
    f.seek(end_at - _LOCATOR.size)
    locator = _LOCATOR.unpack(f.read(_LOCATOR.size))
    if locator[0] != _LOCATOR_SIGNATURE:
        return []
    found = []
    for offset in {end_at - _LOCATOR.size - _END64.size, locator[2]}:
        if 0 <= offset and offset + _END64.size <= file_size:
            f.seek(offset)
            record = _END64.unpack(f.read(_END64.size))
            if record[0] == _END64_SIGNATURE:
                found.append((record[7], record[8]))
    return found
