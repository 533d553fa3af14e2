"""The refusals of the bundle import and the snapshot store, each a :class:`MusinglyError` with a code.

Their codes are registered in the "Bundles and the snapshot store" section of
:data:`musingly_pipeline.errors.PIPELINE_CODES`; ``str(error)`` is ``"CODE: message"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musingly_core.report import ValidationReport

from musingly_pipeline.errors import MusinglyError

# The exit code of the command line for a refusal that is a mistake in the arguments.
USAGE_EXIT = 2


@dataclass(frozen=True)
class SourceFile:
    """The bytes an import read: their sha256 (``None`` when the file could not be read), size, and
    the entities per kind the file states (empty when it did not parse)."""

    sha256: str | None
    size: int
    counts: dict[str, int] = field(default_factory=dict)


class BundleError(MusinglyError):
    """A refusal of the bundles area. ``usage``: the refusal is about the arguments (exit code 2)."""

    def __init__(self, code: str, message: str, path: str = "", *, usage: bool = False):
        super().__init__(code, message, path)
        if usage:
            self.exit_code = USAGE_EXIT


class BundleInvalid(BundleError):
    """The bundle (or the merged result) breaks a rule; ``report`` lists every issue. ``source``:
    the file's sha256 and size, when the bundle came from a file."""

    def __init__(self, report: ValidationReport, source: SourceFile | None = None):
        errors = report.errors
        first = f": {errors[0]}" if errors else ""
        super().__init__("IMPORT_BUNDLE_INVALID", f"{report.file} is invalid ({len(errors)} error(s)){first}",
                         str(report.file))
        self.report = report
        self.source = source


class ImportRefused(BundleError):
    """The import was refused before loading (a shrink, a merge with nothing to merge onto ...).
    ``source``: the file's sha256 and size, when it was read before the refusal."""

    source: SourceFile | None = None


class RemovalError(ImportRefused):
    """A ``--remove`` value that does not name a row; the message says the expected form."""


class SnapshotError(BundleError):
    """A lifecycle operation refused (by the arguments or by the database); the message says why and what to do."""


class StagingError(BundleError):
    """A staged bundle is missing or its bytes do not match their hash; the message says what to do."""


class PushRefused(BundleError):
    """A push that cannot be taken (its name, its size); the message says the fix."""
