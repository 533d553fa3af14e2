"""musingly-core: the contract of a Musingly content bundle, for the generators that write bundles.

* :mod:`musingly_core.models`: the pydantic models (``ImportBundle``, ``ImportMetadata``,
  ``DomainImport``, ... ``ConceptLinkImport``).
* :func:`validate`: every rule the pipeline runs on a bundle, without a database; the same issues
  (codes, places, messages) as ``musingly validate``.
* :mod:`musingly_core.schema`: the bundle's JSON Schema, shipped as ``import-schemas.json``.

Version policy: ``__version__`` follows semantic versioning. A release that adds a supported
``schema_version`` or a rule is a minor one; one that stops accepting a bundle an earlier release of
the same major version accepted (a dropped ``schema_version``) is a major one. The bundle versions
this release reads and writes are ``SUPPORTED_SCHEMA_VERSIONS``; any other is refused with a
message that lists them.
"""

__version__ = "1.0.0"

from musingly_core.bundle_file import validate  # noqa: E402
from musingly_core.models import SUPPORTED_SCHEMA_VERSIONS  # noqa: E402
from musingly_core.report import Issue, Severity, ValidationReport  # noqa: E402

__all__ = ["SUPPORTED_SCHEMA_VERSIONS", "Issue", "Severity", "ValidationReport", "__version__", "validate"]
