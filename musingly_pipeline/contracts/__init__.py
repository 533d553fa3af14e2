"""Contracts of the seed units (``seed_units``); the bundle's contract is ``musingly_core.models``."""
