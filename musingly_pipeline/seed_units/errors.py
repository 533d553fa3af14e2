"""The refusals of seed units, each a :class:`~musingly_pipeline.errors.MusinglyError` with a stable code.

* :class:`SeedUnitError`: a refused operation (a folder that is not one, an export that cannot be
  written, a unit id that is not in the database, a batch item without a unit's text);
* :class:`SeedFileRefused`: a batch item standing for a file that is not a unit (its content was
  not kept, so no reprocessing can import it);
* :class:`FolderFileRefused`: a file of a seed folder that is not a regular file inside it
  (``FILE_NOT_FOUND``, ``FILE_UNREADABLE``, ``FILE_OUTSIDE_FOLDER``);
* :class:`SeedUnitRejected`: a unit that failed validation or import, with every issue it has
  (:class:`SeedImportFailed` when the database refused it).
"""

from __future__ import annotations

from musingly_core.report import Issue, Severity

from musingly_pipeline.errors import MusinglyError


class SeedUnitError(MusinglyError):
    """A refused seed-unit operation: ``code`` from the "Seed units" section of ``PIPELINE_CODES``."""


class FolderFileRefused(SeedUnitError):
    """A file of a seed folder that is not a regular file inside it; ``issue`` says which and why."""

    def __init__(self, issue: Issue):
        super().__init__(issue.code, issue.message, issue.path)


class SeedFileRefused(SeedUnitError):
    """A ``seed_unit`` batch item for a file that is not a unit (``{"file", "refused"}``): ``SEED_FILE_REFUSED``."""

    def __init__(self, message: str, path: str = ""):
        super().__init__("SEED_FILE_REFUSED", message, path)


class SeedUnitRejected(SeedUnitError):
    """A unit that failed validation or import: ``issues`` say why, each with its code; the error's
    own code is its first error's. ``str()`` lists the errors (each already names its code)."""

    def __init__(self, issues: list[Issue]):
        errors = [i for i in issues if i.severity is Severity.error]
        first = errors[0] if errors else Issue("SEED_ITEM_INVALID", Severity.error, "", "the unit was rejected")
        super().__init__(first.code, "; ".join(str(i) for i in errors) or first.message, first.path)
        self.issues = issues

    def __str__(self) -> str:
        return self.message


class SeedImportFailed(SeedUnitRejected):
    """The database refused a validated unit (an id owned by another unit, ...); ``issues`` say why."""
