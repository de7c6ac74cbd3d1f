"""How many members a zip archive's central directory can list, read from its end records alone.

A .npz or .keras file is a zip archive, and ``zipfile`` parses its whole central directory
into objects before it can be asked anything: about 1 KB of memory per member. The directory's
size and member count are declared in the end-of-central-directory record (and in the ZIP64
end record, for large archives), so they can be checked first. Both count: ``zipfile`` reads
entries until it has consumed the declared size, whatever the declared count says, so a
forged count of 1 in front of a 100 MB directory would still make millions of objects.

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
    """The declared member count and size of the central directory of ``path``. None: no end
    record (not a zip, or one ``zipfile`` will refuse for the same reason)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            file_size = f.tell()
            tail_size = min(file_size, _END.size + _MAX_COMMENT)
            f.seek(file_size - tail_size)
            tail = f.read(tail_size)
            at = len(tail) - _END.size  # no comment: the record ends the file (zipfile's order)
            if tail[at:].startswith(_END_SIGNATURE) and tail[-2:] == b"\0\0":
                pass
            else:
                at = tail.rfind(_END_SIGNATURE)
            if at < 0 or at + _END.size > len(tail):
                return None
            fields = _END.unpack_from(tail, at)
            entries, size = fields[4], fields[5]
            if entries == 0xFFFF or size == 0xFFFFFFFF:  # the real values are in ZIP64 records
                end_at = file_size - tail_size + at
                zip64 = _zip64_counts(f, end_at, file_size)
                if zip64 is not None:
                    entries, size = zip64
    except OSError:
        return None
    return Directory(entries, size)


def _zip64_counts(f, end_at: int, file_size: int) -> tuple[int, int] | None:
    """(entries, directory size) from the ZIP64 end record the locator before ``end_at``
    points to; None when either record is missing or points outside the file."""
    if end_at < _LOCATOR.size:
        return None
    f.seek(end_at - _LOCATOR.size)
    locator = _LOCATOR.unpack(f.read(_LOCATOR.size))
    if locator[0] != _LOCATOR_SIGNATURE or locator[2] + _END64.size > file_size:
        return None
    f.seek(locator[2])
    record = _END64.unpack(f.read(_END64.size))
    if record[0] != _END64_SIGNATURE:
        return None
    return record[7], record[8]
