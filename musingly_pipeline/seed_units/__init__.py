"""Seed units: the lossless per-unit format, imported from and exported to a seed data folder.

``data/seed_data/`` holds ``users.json`` and ``units/*.json``. From the file to the tables:

* ``contracts``: the pydantic models of a unit file and ``users.json``;
* ``parse``, ``validation``, ``rules``: one file's bytes to a validated unit, every finding an issue;
* ``records``, ``tables``: one validated unit to its rows (and back), the SQL of the seed tables;
* ``files``, ``folder``, ``processor``: a folder's files read safely, imported as an import batch
  (one item per unit file), exported, compared;
* ``store``: :class:`SeedUnitStore`, what the CLI and the Dagster asset call; ``errors``: its refusals.
"""

from musingly_pipeline.seed_units.store import SeedUnitStore  # noqa: E402

__all__ = ["SeedUnitStore"]
