"""Seed units: the lossless per-unit format, imported from and exported to a seed data folder.

``data/seed_data/`` holds ``users.json`` and ``units/*.json``. The per-item functions live in
``validation.packages`` (:func:`validate_unit`) and ``storage.seed_units`` (:func:`import_unit`);
this package runs them over a folder and writes exports.
"""
