"""Validation: contracts, integrity and graph rules, as one list of issues."""

from musingly_pipeline.validation.bundle_file import (
    MAX_BUNDLE_BYTES,
    BundleFile,
    read_bundle,
    validate_bundle,
    validate_bundle_file,
)
from musingly_pipeline.validation.report import (
    CODES,
    Category,
    Issue,
    Severity,
    ValidationReport,
    markdown_table,
)

__all__ = [
    "CODES",
    "MAX_BUNDLE_BYTES",
    "BundleFile",
    "Category",
    "Issue",
    "Severity",
    "ValidationReport",
    "markdown_table",
    "read_bundle",
    "validate_bundle",
    "validate_bundle_file",
]
