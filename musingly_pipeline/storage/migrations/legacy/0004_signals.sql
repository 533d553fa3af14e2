-- The signal store's PostgreSQL backend (musingly_pipeline.signals.postgres_store).

-- One row per stored event id: the global uniqueness that a day-partitioned table cannot enforce
-- (its unique keys must contain the partition key). Writers insert here first, ON CONFLICT DO NOTHING.
CREATE TABLE signal_event_ids (
    kind      text NOT NULL CHECK (kind IN ('signal', 'emission')),
    event_id  text NOT NULL,
    day       date NOT NULL,
    PRIMARY KEY (kind, event_id)
);

CREATE SEQUENCE signal_events_seq;

-- One row is one stored envelope (a signal or an emission), partitioned by its UTC day.
-- seq is the write order: replay sorts by (ts, seq), so ties keep first-written order.
CREATE TABLE signal_events (
    kind        text NOT NULL CHECK (kind IN ('signal', 'emission')),
    day         date NOT NULL,
    seq         bigint NOT NULL DEFAULT nextval('signal_events_seq'),
    event_id    text NOT NULL,
    ts          timestamptz NOT NULL,
    source      text,
    event_type  text NOT NULL,
    record      jsonb NOT NULL,
    PRIMARY KEY (kind, day, event_id),
    CHECK (day = (ts AT TIME ZONE 'UTC')::date)
) PARTITION BY RANGE (day);

CREATE INDEX signal_events_replay ON signal_events (kind, ts, seq);
CREATE INDEX signal_events_source ON signal_events (kind, source, ts);
CREATE INDEX signal_events_entities ON signal_events USING gin ((record -> 'entity_refs') jsonb_path_ops);

-- Create the partition of day d if it is missing. Two writers racing for the same new day: the
-- loser's CREATE fails with duplicate_table (or an overlap error) and is ignored; the table exists.
CREATE FUNCTION signal_events_partition(d date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    part text := 'signal_events_' || to_char(d, 'YYYYMMDD');
BEGIN
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF signal_events FOR VALUES FROM (%L) TO (%L)', part, d, d + 1);
        EXCEPTION WHEN duplicate_table OR invalid_object_definition THEN
            NULL;
        END;
    END IF;
    RETURN part;
END
$$;

-- One row is one checkpoint or snapshot document, replaced on rewrite.
CREATE TABLE signal_documents (
    folder      text NOT NULL CHECK (folder IN ('checkpoints', 'snapshots')),
    name        text NOT NULL,
    body        jsonb NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (folder, name)
);
