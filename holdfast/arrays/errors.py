"""Exceptions of holdfast.arrays.

ArraysError                 anything this package refuses
├── MissingExtraError       the `holdfast[arrays]` extra is not installed
├── MetadataError           holdfast.yaml is invalid; `.problems` says where and why
├── SourceError             a torrent, path or webseed cannot serve what was asked
│   ├── FileNotInTorrent    no such file or folder in the torrent
│   └── PieceUnavailable    a piece could not be fetched (or never verified)
└── PieceHashMismatch       fetched bytes do not match the torrent's piece hash
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

EXTRA_HINT = "install it with: pip install 'holdfast[arrays]'"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a metadata file or the data it describes.

    `field` is the path to the field in the metadata ("creators[0].orcid"), `source`
    the file name it was read from and `line` the 1-based line, when known.
    """

    field: str
    message: str
    source: str | None = None
    line: int | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        prefix = f"{where}: " if where else ""
        field = f"{self.field}: " if self.field else ""
        label = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{label}{field}{self.message}"


class ArraysError(Exception):
    """Base of the exceptions raised by holdfast.arrays."""


class MissingExtraError(ArraysError):
    def __init__(self, module: str) -> None:
        super().__init__(f"reading arrays needs the {module!r} package; {EXTRA_HINT}")
        self.module = module


class MetadataError(ArraysError):
    """A metadata file that does not validate; every problem found is listed."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def fields(self) -> dict[str, str]:
        """Field path -> first message, for an API error envelope."""
        fields: dict[str, str] = {}
        for problem in self.problems:
            fields.setdefault(problem.field or "(document)", problem.message)
        return fields


class SourceError(ArraysError):
    pass


class FileNotInTorrent(SourceError, FileNotFoundError):
    pass


class PieceUnavailable(SourceError):
    pass


class PieceHashMismatch(ArraysError):
    pass
