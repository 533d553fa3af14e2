"""Pydantic contracts of the seed data format (``shared/seeds/001``): unit files and ``users.json``.

A unit file (``units/{unit-name}.json``) holds one unit with its lessons, each lesson's complete
lesson package, the flow runs, step runs and LLM requests that generated it, the unit's resources
and its learning conversations. ``users.json`` holds the users that ``owner_key`` and ``user_id``
refer to.

The models validate; they are not what gets stored. Import keeps the parsed JSON tree (key order,
absent versus ``null``, integer versus float spelling) and stores it through
:mod:`musingly_pipeline.seed_units.records`, so an exported file is byte for byte what was
imported. Objects the document shows as ``{ ... }`` stay free-form JSON (:data:`FreeObject`).

Decisions where the document is silent:

* Only what a record cannot exist without is required: a unit's ``title`` and ``lessons``, a
  lesson's ``title`` and ``package``, a package's ``meta``, ``exercise_bank``, ``quiz`` and
  ``quiz_metadata.total_items``, an exercise's ``id``, ``exercise_type`` and ``stem``, an option's
  ``id``, ``label`` and ``text``, a message's ``role`` and ``content``, a user's ``id``, ``key`` and
  ``email``. Every other field may be absent or ``null``, and which one it was is kept.
* Record ids are strings and may be absent (import gives them one). Messages have no id in the
  document; a message is identified by its conversation and position.
* Timestamps are strings that ``datetime.fromisoformat`` accepts, kept with their spelling.
* ``users.json`` is ``{"users": [{"id": 1, "key": "brian", "email": ...}, ...]}``: each user
  carries its ``owner_key`` as ``key``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from musingly_core.storable import DoubleNumber, Int8, NoNul


def _iso_datetime(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "iso_datetime", "{value!r} is not an ISO 8601 datetime", {"value": value},
        ) from None
    return value


class ColumnKind:
    """Marks how a field is stored in its table (read by ``seed_units.records``)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"ColumnKind({self.name!r})"


TEXT = ColumnKind("text")
TIME = ColumnKind("time")
INT = ColumnKind("int")
NUMBER = ColumnKind("number")
BOOL = ColumnKind("bool")
JSON = ColumnKind("json")

Text = Annotated[str, NoNul, TEXT]
Id = Annotated[str, NoNul, Field(min_length=1), TEXT]
Timestamp = Annotated[
    str, AfterValidator(_iso_datetime), TIME,
    Field(description="ISO 8601: `2024-01-15T10:30:00Z`, `...+00:00` or no offset (UTC)."),
]
BigInt = Annotated[Int8, INT]
# Written as an integer or a float; which one is kept. Stored as double precision.
Number = Annotated[DoubleNumber, NUMBER]
Flag = Annotated[bool, BOOL]
FreeObject = Annotated[dict[str, Any], JSON, Field(description="Free-form JSON object, kept as written.")]
FreeList = Annotated[list[Any], JSON, Field(description="Free-form JSON array, kept as written.")]


class _Record(BaseModel):
    # strict: JSON `"5"` is not a number and `1` is not `true`; a generator's mistake is an error.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class LearningObjective(_Record):
    """One of a unit's learning objectives; exercises and packages refer to it by ``id``."""

    id: Annotated[str, Field(min_length=1)]
    title: str
    description: str | None = None


class PackageMeta(_Record):
    lesson_id: str
    title: str
    learner_level: str | None = None
    package_schema_version: int
    content_version: int


class ExerciseOption(_Record):
    id: Annotated[str, Field(min_length=1)]
    label: str
    text: str
    rationale_wrong: str | None = None


class AnswerKey(_Record):
    label: str | None = None
    option_id: str | None = None
    rationale_right: str | None = None


class Exercise(_Record):
    """One exercise of a lesson's exercise bank; the quiz lists exercises by ``id``."""

    id: Annotated[str, Field(min_length=1)]
    exercise_type: str
    exercise_category: str | None = None
    stem: str
    cognitive_level: str | None = None
    difficulty: str | None = None
    aligned_learning_objective: str | None = None
    options: list[ExerciseOption] | None = None
    answer_key: AnswerKey | None = None


class Coverage(_Record):
    exercise_ids: list[str]


Ratios = dict[str, int | float]


class QuizMetadata(_Record):
    quiz_type: str | None = None
    total_items: int
    difficulty_distribution_target: Ratios | None = None
    difficulty_distribution_actual: Ratios | None = None
    cognitive_mix_target: Ratios | None = None
    cognitive_mix_actual: Ratios | None = None
    coverage_by_LO: dict[str, Coverage] | None = None
    coverage_by_concept: dict[str, Any] | None = None
    normalizations_applied: list[Any] | None = None
    selection_rationale: list[Any] | None = None
    gaps_identified: list[Any] | None = None


class LessonPackage(_Record):
    """A lesson's complete package, stored whole: no interpretation or transformation."""

    meta: PackageMeta
    unit_learning_objective_ids: list[str] | None = None
    exercise_bank: list[Exercise]
    quiz: list[str]
    quiz_metadata: QuizMetadata


class FlowRun(_Record):
    """One run of a generation flow (``lesson_creation``) with its totals."""

    id: Id | None = None
    user_id: BigInt | None = None
    flow_name: Text | None = None
    status: Text | None = None
    execution_mode: Text | None = None
    current_step: Text | None = None
    step_progress: BigInt | None = None
    total_steps: BigInt | None = None
    progress_percentage: Number | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    last_heartbeat: Timestamp | None = None
    total_tokens: BigInt | None = None
    total_cost: Number | None = None
    execution_time_ms: BigInt | None = None
    inputs: FreeObject | None = None
    outputs: FreeObject | None = None
    flow_metadata: FreeObject | None = None
    error_message: Text | None = None


class StepRun(_Record):
    """One step of a flow run, with the LLM request it made."""

    id: Id | None = None
    flow_run_id: Id | None = None
    llm_request_id: Id | None = None
    step_name: Text | None = None
    step_order: BigInt | None = None
    status: Text | None = None
    inputs: FreeObject | None = None
    outputs: FreeObject | None = None
    tokens_used: BigInt | None = None
    cost_estimate: Number | None = None
    execution_time_ms: BigInt | None = None
    error_message: Text | None = None
    step_metadata: FreeObject | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class LLMRequest(_Record):
    """One call to a language model, with its request and raw response."""

    id: Id | None = None
    user_id: BigInt | None = None
    api_variant: Text | None = None
    provider: Text | None = None
    model: Text | None = None
    provider_response_id: Text | None = None
    system_fingerprint: Text | None = None
    temperature: Number | None = None
    max_output_tokens: BigInt | None = None
    messages: FreeList | None = None
    additional_params: FreeObject | None = None
    request_payload: FreeObject | None = None
    response_content: Text | None = None
    response_raw: FreeObject | None = None
    tokens_used: BigInt | None = None
    input_tokens: BigInt | None = None
    output_tokens: BigInt | None = None
    cost_estimate: Number | None = None
    status: Text | None = None
    execution_time_ms: BigInt | None = None
    error_message: Text | None = None
    error_type: Text | None = None
    retry_attempt: BigInt | None = None
    cached: Flag | None = None
    response_created_at: Timestamp | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class Lesson(_Record):
    """One lesson of a unit: its podcast, its complete package and how it was generated."""

    id: Id | None = None
    title: Text
    learner_level: Text | None = None
    lesson_type: Text | None = None
    source_material: Text | None = None
    podcast_transcript: Text | None = None
    podcast_voice: Text | None = None
    podcast_duration_seconds: BigInt | None = None
    podcast_generated_at: Timestamp | None = None
    podcast_audio_object_id: Text | None = None
    package: Annotated[LessonPackage, JSON]
    package_version: BigInt | None = None
    flow_run_id: Id | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    flow_run: FlowRun | None = None
    step_runs: list[StepRun] | None = None
    llm_requests: list[LLMRequest] | None = None


class Resource(_Record):
    """A document or link the unit was made from."""

    id: Id | None = None
    user_id: BigInt | None = None
    resource_type: Text | None = None
    filename: Text | None = None
    source_url: Text | None = None
    extracted_text: Text | None = None
    extraction_metadata: FreeObject | None = None
    file_size: BigInt | None = None
    object_store_document_id: Text | None = None
    object_store_image_id: Text | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    document: FreeObject | None = None
    image: FreeObject | None = None


class Message(_Record):
    """One message of a conversation; identified by its conversation and position (no id)."""

    conversation_id: Id | None = None
    role: Text
    content: Text
    message_order: BigInt | None = None
    llm_request_id: Id | None = None
    tokens_used: BigInt | None = None
    cost_estimate: Number | None = None
    message_metadata: FreeObject | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class Conversation(_Record):
    """A learning-coach or teaching-assistant conversation about the unit."""

    id: Id | None = None
    user_id: BigInt | None = None
    conversation_type: Text | None = None
    title: Text | None = None
    status: Text | None = None
    conversation_metadata: FreeObject | None = None
    message_count: BigInt | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    last_message_at: Timestamp | None = None
    messages: list[Message] | None = None


class LearningConversations(_Record):
    coach: list[Conversation] | None = None
    assistant: list[Conversation] | None = None


CONVERSATION_GROUPS: tuple[str, ...] = ("coach", "assistant")


class Unit(_Record):
    """One unit file: the unit with everything that belongs to it."""

    id: Id | None = None
    title: Text
    description: Text | None = None
    learner_level: Text | None = None
    learning_objectives: Annotated[list[LearningObjective], JSON] | None = None
    target_lesson_count: BigInt | None = None
    source_material: Text | None = None
    generated_from_topic: Flag | None = None
    flow_type: Text | None = None
    status: Text | None = None
    is_global: Flag | None = None
    owner_key: Text | None = None
    art_image_description: Text | None = None
    art_image: FreeObject | None = None
    podcast_transcript: Text | None = None
    podcast_voice: Text | None = None
    lessons: list[Lesson]
    resources: list[Resource] | None = None
    learning_conversations: LearningConversations | None = None


class User(_Record):
    """One user; ``key`` is what a unit's ``owner_key`` names."""

    id: BigInt
    key: Annotated[str, Field(min_length=1), NoNul, TEXT]
    email: Annotated[str, Field(min_length=1), NoNul, TEXT]
    name: Text | None = None
    role: Text | None = None
    is_active: Flag | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class UsersFile(_Record):
    """``users.json``."""

    users: list[User]
