"""Contracts: the pydantic models at the edges of the pipeline."""

from musingly_pipeline.contracts.bundle import (
    ENTITY_KINDS,
    SUPPORTED_SCHEMA_VERSIONS,
    BeaconImport,
    ConceptImport,
    ConceptLinkImport,
    ConceptSparkImport,
    DifficultyLevel,
    DomainImport,
    ImportBundle,
    ImportMetadata,
    LinkType,
    SparkBeaconImport,
    SparkImport,
    SparkLinkImport,
    TrailImport,
)
from musingly_pipeline.contracts.schema import bundle_json_schema, write_bundle_schema

__all__ = [
    "ENTITY_KINDS",
    "SUPPORTED_SCHEMA_VERSIONS",
    "BeaconImport",
    "ConceptImport",
    "ConceptLinkImport",
    "ConceptSparkImport",
    "DifficultyLevel",
    "DomainImport",
    "ImportBundle",
    "ImportMetadata",
    "LinkType",
    "SparkBeaconImport",
    "SparkImport",
    "SparkLinkImport",
    "TrailImport",
    "bundle_json_schema",
    "write_bundle_schema",
]
