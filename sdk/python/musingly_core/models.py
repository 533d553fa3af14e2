"""Pydantic contracts of a content bundle: what an AI generator writes as JSON.

A bundle is a complete (or, with ``--merge``, partial) set of entities for one content version.
Entities refer to each other by slug, never by database id, so a bundle is portable and readable.

Every model is frozen and forbids unknown fields: a misspelled field is an error, never silently
dropped. Every value fits the column it is stored in (:mod:`~musingly_core.storable`), so what
validates imports exactly. Where the guide (``shared/seeds/000``) is cut off, notably
``SparkImport``, the fields chosen are documented on the model.

Types are strict in both ways in: ``ImportBundle.model_validate(json.load(f))`` and
``ImportBundle.model_validate_json(text)`` give the same result for the same content
(``"is_published": "yes"`` and ``"order_index": "3"`` are errors in both). The one kind of value
JSON cannot carry natively, a time, is an ISO 8601 string in both, or a ``datetime`` in Python;
``model_dump()`` gives it back as the ISO string, so ``json.dump(bundle.model_dump(), f)`` works.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from musingly_core.storable import INT4_MAX, NoNul

SUPPORTED_SCHEMA_VERSIONS: tuple[str, ...] = ("1.0.0",)

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN, min_length=1, max_length=200),
    Field(description="Lowercase kebab-case identifier, unique within its entity type: `multi-head-attention`."),
]
Color = Annotated[
    str,
    StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$"),
    Field(description="Hex color `#RRGGBB`."),
]
# Free text (no pattern keeps NUL out): stored in `text` columns, which cannot hold NUL. The NUL
# check goes after the length constraints, which then keep their own error messages.
Prose = Annotated[str, NoNul]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500), NoNul]
Weight = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Strength of the link, from 0 to 1.")]
# Stored in an `integer` column.
OrderIndex = Annotated[int, Field(ge=0, le=INT4_MAX, description="Position among siblings, from 0.")]

_DATETIME = TypeAdapter(datetime)


def _datetime_from_string(value: object) -> object:
    """An ISO 8601 string parsed exactly as strict JSON parsing does, whichever way it came in.

    Strict Python validation takes only ``datetime`` objects, so the guide's
    ``generated_at=datetime.now(timezone.utc).isoformat()`` and ``model_validate(json.load(f))``
    would fail; this parses their strings as ``model_validate_json`` parses the same text (numbers
    stay refused in both).
    """
    if not isinstance(value, str):
        return value
    try:
        return _DATETIME.validate_strings(value, strict=True)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise PydanticCustomError(err["type"], err["msg"], err.get("ctx")) from None


IsoDatetime = Annotated[
    datetime,
    BeforeValidator(_datetime_from_string),
    # The same string in model_dump() as in model_dump_json(): a plain dump is JSON-ready.
    PlainSerializer(lambda value: _DATETIME.dump_python(value, mode="json"), return_type=str),
]


class DifficultyLevel(str, Enum):
    beginner = "beginner"
    intermediate = "intermediate"
    advanced = "advanced"
    expert = "expert"


class LinkType(str, Enum):
    """Every link type orders learning (source before target), so all links together form a DAG."""

    prerequisite = "prerequisite"
    recommended = "recommended"
    extends = "extends"


# The fields use these Literal types, spelled from the enums above: a model holds the plain string
# (as with ``use_enum_values``), and pydantic-core checks a literal without calling back into Python
# for each value, which was a third of the validation time of a 400k-link bundle.
Difficulty = Literal["beginner", "intermediate", "advanced", "expert"]
Link = Literal["prerequisite", "recommended", "extends"]


class _Contract(BaseModel):
    # strict: JSON `"yes"` is not a boolean and `"5"` is not a number; a generator's type mistake
    # is an error, not a silent coercion.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, use_enum_values=True)


class ImportMetadata(_Contract):
    """Where a bundle came from and when it was made."""

    generated_at: IsoDatetime = Field(description="When the generator wrote the bundle, ISO 8601.")
    source_system: Text = Field(description="The generator's name: `ml-content-generator`.")
    source_version: Text | None = Field(default=None, description="The generator's version.")
    description: Prose | None = Field(default=None, description="What this bundle changes, for people.")


class DomainImport(_Contract):
    """A top-level category (`Machine Learning`)."""

    name: Text
    slug: Slug
    description: Prose | None = None
    icon: Annotated[str, StringConstraints(max_length=100), NoNul] | None = None
    color: Color | None = None
    is_published: bool = False


class TrailImport(_Contract):
    """A learning path inside a domain."""

    domain_slug: Slug
    title: Text
    slug: Slug
    description: Prose | None = None
    difficulty_level: Difficulty = "beginner"
    is_published: bool = False


class ConceptImport(_Contract):
    """A topic cluster, usually inside a trail (``trail_slug`` may be absent for a free-standing concept)."""

    trail_slug: Slug | None = None
    title: Text
    slug: Slug
    description: Prose | None = None
    order_index: OrderIndex = 0
    is_published: bool = False


class SparkImport(_Contract):
    """A micro-lesson.

    The guide's example is cut off after ``content_md``; the remaining fields are what a learning
    platform needs to list and schedule a lesson: ``difficulty_level``, ``estimated_minutes`` (reading
    time, 1 to 600) and ``is_published``. ``content_md`` has no size limit: a 50 MB lesson is accepted.
    """

    title: Text
    slug: Slug
    summary: Prose | None = None
    content_md: Prose = Field(description="The lesson body, Markdown.")
    difficulty_level: Difficulty = "beginner"
    estimated_minutes: Annotated[int, Field(ge=1, le=600)] = 5
    is_published: bool = False


class BeaconImport(_Contract):
    """A discovery tag (`Transformers`)."""

    name: Text
    slug: Slug
    description: Prose | None = None
    category: Annotated[str, StringConstraints(max_length=100), NoNul] | None = None


class ConceptSparkImport(_Contract):
    """A spark's place in a concept."""

    concept_slug: Slug
    spark_slug: Slug
    order_index: OrderIndex = 0


class SparkBeaconImport(_Contract):
    """A spark tagged with a beacon."""

    spark_slug: Slug
    beacon_slug: Slug


class _PrerequisiteLink(_Contract):
    source_slug: Slug
    target_slug: Slug
    link_type: Link = "prerequisite"
    weight: Weight = 1.0
    description: Prose | None = None


class SparkLinkImport(_PrerequisiteLink):
    """A prerequisite edge: learn ``source_slug`` before ``target_slug``."""


class ConceptLinkImport(_PrerequisiteLink):
    """A prerequisite edge between concepts: learn ``source_slug`` before ``target_slug``."""


class ImportBundle(_Contract):
    """A complete import payload. Every entity list may be empty or absent."""

    schema_version: str = Field(description=f"Contract version; supported: {', '.join(SUPPORTED_SCHEMA_VERSIONS)}.")
    version_label: Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul] = Field(
        description="Your label for this content version: `v2.1.0`, `2026-01-Q1`."
    )
    name: Text | None = Field(default=None, description="Defaults to the version label.")
    metadata: ImportMetadata
    domains: list[DomainImport] = Field(default_factory=list)
    trails: list[TrailImport] = Field(default_factory=list)
    concepts: list[ConceptImport] = Field(default_factory=list)
    sparks: list[SparkImport] = Field(default_factory=list)
    beacons: list[BeaconImport] = Field(default_factory=list)
    concept_sparks: list[ConceptSparkImport] = Field(default_factory=list)
    spark_beacons: list[SparkBeaconImport] = Field(default_factory=list)
    spark_links: list[SparkLinkImport] = Field(default_factory=list)
    concept_links: list[ConceptLinkImport] = Field(default_factory=list)

    @field_validator("schema_version")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(
                f"schema_version {value!r} is not supported; this code supports "
                f"{', '.join(SUPPORTED_SCHEMA_VERSIONS)}"
            )
        return value

    @model_validator(mode="after")
    def _default_name(self) -> ImportBundle:
        if self.name is None:
            object.__setattr__(self, "name", self.version_label)
        return self

    def counts(self) -> dict[str, int]:
        """Entities per type, in import order."""
        return {kind: len(getattr(self, kind)) for kind in ENTITY_KINDS}


# The order in which entity lists load: each kind only refers to kinds before it.
ENTITY_KINDS: tuple[str, ...] = (
    "domains",
    "trails",
    "concepts",
    "sparks",
    "beacons",
    "concept_sparks",
    "spark_beacons",
    "spark_links",
    "concept_links",
)
