"""Validation of what the pipeline reads beyond bundles: seed units (``packages``) and its issue codes.

Bundles are validated by ``musingly_core`` (``musingly_core.validate``); ``report`` registers the
pipeline's codes beside the bundle's and renders issues for Dagster.
"""
