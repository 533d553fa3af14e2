"""musingly_pipeline: content bundles, seed units, import batches and signals, from files to PostgreSQL.

The bundle contract and its validation come from ``musingly_core`` (``sdk/python``), the package
generators install; importing this package registers the pipeline's own issue codes beside the
bundle's (``errors.py``).
"""

__version__ = "0.1.0"

from musingly_pipeline import errors as _codes  # noqa: E402,F401  (registers the codes)
