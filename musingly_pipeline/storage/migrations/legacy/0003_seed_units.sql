-- Seed units (shared/seeds/001): users, units and everything a unit file holds.
--
-- Columns are the document's fields, one to one. Beyond them each table has:
--   spelling  json: how the file wrote the record where the typed columns cannot say it (absent
--             optional fields, null nested parts, timestamp styles, integers in number fields);
--             see musingly_pipeline/storage/seed_records.py. NULL when there is nothing to say.
--   position  the record's index in its list in the file, so export writes the same order.
-- Free-form objects, learning objectives and lesson packages are `json`, not `jsonb`: `json` keeps
-- the text as imported (key order, number spelling such as 1.0 or 1e-05), which the exact round
-- trip needs; jsonb reorders keys and rewrites numbers.
-- Records of a unit are owned by it (ON DELETE CASCADE); re-importing a unit replaces them.

CREATE TABLE users (
    id                          bigint PRIMARY KEY,
    key                         text NOT NULL UNIQUE,
    email                       text NOT NULL UNIQUE,
    name                        text,
    role                        text,
    is_active                   boolean,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    position                    integer NOT NULL,
    spelling                    json
);

CREATE TABLE units (
    id                          text PRIMARY KEY,
    title                       text NOT NULL,
    description                 text,
    learner_level               text,
    learning_objectives         json,
    target_lesson_count         bigint,
    source_material             text,
    generated_from_topic        boolean,
    flow_type                   text,
    status                      text,
    is_global                   boolean,
    owner_key                   text REFERENCES users (key) ON UPDATE CASCADE,
    art_image_description       text,
    art_image                   json,
    podcast_transcript          text,
    podcast_voice               text,
    spelling                    json
);
CREATE INDEX units_owner_key ON units (owner_key);

CREATE TABLE flow_runs (
    id                          text PRIMARY KEY,
    unit_id                     text NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    user_id                     bigint REFERENCES users (id),
    flow_name                   text,
    status                      text,
    execution_mode              text,
    current_step                text,
    step_progress               bigint,
    total_steps                 bigint,
    progress_percentage         double precision,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    started_at                  timestamptz,
    completed_at                timestamptz,
    last_heartbeat              timestamptz,
    total_tokens                bigint,
    total_cost                  double precision,
    execution_time_ms           bigint,
    inputs                      json,
    outputs                     json,
    flow_metadata               json,
    error_message               text,
    spelling                    json
);
CREATE INDEX flow_runs_unit_id ON flow_runs (unit_id);

CREATE TABLE lessons (
    id                          text PRIMARY KEY,
    unit_id                     text NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    position                    integer NOT NULL,
    title                       text NOT NULL,
    learner_level               text,
    lesson_type                 text,
    source_material             text,
    podcast_transcript          text,
    podcast_voice               text,
    podcast_duration_seconds    bigint,
    podcast_generated_at        timestamptz,
    podcast_audio_object_id     text,
    package                     json NOT NULL,
    package_version             bigint,
    flow_run_id                 text REFERENCES flow_runs (id) ON DELETE CASCADE,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    spelling                    json,
    UNIQUE (unit_id, position)
);
CREATE INDEX lessons_flow_run_id ON lessons (flow_run_id);

CREATE TABLE llm_requests (
    id                          text PRIMARY KEY,
    lesson_id                   text NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    position                    integer NOT NULL,
    user_id                     bigint REFERENCES users (id),
    api_variant                 text,
    provider                    text,
    model                       text,
    provider_response_id        text,
    system_fingerprint          text,
    temperature                 double precision,
    max_output_tokens           bigint,
    messages                    json,
    additional_params           json,
    request_payload             json,
    response_content            text,
    response_raw                json,
    tokens_used                 bigint,
    input_tokens                bigint,
    output_tokens               bigint,
    cost_estimate               double precision,
    status                      text,
    execution_time_ms           bigint,
    error_message               text,
    error_type                  text,
    retry_attempt               bigint,
    cached                      boolean,
    response_created_at         timestamptz,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    spelling                    json,
    UNIQUE (lesson_id, position)
);

CREATE TABLE step_runs (
    id                          text PRIMARY KEY,
    lesson_id                   text NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    position                    integer NOT NULL,
    flow_run_id                 text REFERENCES flow_runs (id) ON DELETE CASCADE,
    llm_request_id              text REFERENCES llm_requests (id) ON DELETE CASCADE,
    step_name                   text,
    step_order                  bigint,
    status                      text,
    inputs                      json,
    outputs                     json,
    tokens_used                 bigint,
    cost_estimate               double precision,
    execution_time_ms           bigint,
    error_message               text,
    step_metadata               json,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    completed_at                timestamptz,
    spelling                    json,
    UNIQUE (lesson_id, position)
);
CREATE INDEX step_runs_flow_run_id ON step_runs (flow_run_id);
CREATE INDEX step_runs_llm_request_id ON step_runs (llm_request_id);

CREATE TABLE resources (
    id                          text PRIMARY KEY,
    unit_id                     text NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    position                    integer NOT NULL,
    user_id                     bigint REFERENCES users (id),
    resource_type               text,
    filename                    text,
    source_url                  text,
    extracted_text              text,
    extraction_metadata         json,
    file_size                   bigint,
    object_store_document_id    text,
    object_store_image_id       text,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    document                    json,
    image                       json,
    spelling                    json,
    UNIQUE (unit_id, position)
);

-- conversation_group: the list of `learning_conversations` the conversation is in (coach or assistant).
CREATE TABLE conversations (
    id                          text PRIMARY KEY,
    unit_id                     text NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    conversation_group          text NOT NULL CHECK (conversation_group IN ('coach', 'assistant')),
    position                    integer NOT NULL,
    user_id                     bigint REFERENCES users (id),
    conversation_type           text,
    title                       text,
    status                      text,
    conversation_metadata       json,
    message_count               bigint,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    last_message_at             timestamptz,
    spelling                    json,
    UNIQUE (unit_id, conversation_group, position)
);

-- The document gives messages no id: a message is its conversation and its position.
CREATE TABLE conversation_messages (
    conversation_id             text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position                    integer NOT NULL,
    role                        text NOT NULL,
    content                     text NOT NULL,
    message_order               bigint,
    llm_request_id              text REFERENCES llm_requests (id) ON DELETE CASCADE,
    tokens_used                 bigint,
    cost_estimate               double precision,
    message_metadata            json,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    spelling                    json,
    PRIMARY KEY (conversation_id, position)
);
CREATE INDEX conversation_messages_llm_request_id ON conversation_messages (llm_request_id);
