-- The snapshot store: immutable content snapshots, their import log, and the guide's lifecycle
-- functions (create_import_snapshot ... get_import_stats), callable from psql.
--
-- Invariants the database enforces itself:
--   * at most one current snapshot (partial unique index snapshots_one_current);
--   * lifecycle states and import statuses (CHECK constraints);
--   * allowed snapshot transitions (trigger): draft -> ready -> current -> archived, and
--     archived -> current only inside rollback_import; so only a ready snapshot can be promoted;
--   * the current snapshot cannot be deleted (trigger);
--   * references stay inside their snapshot: every content table's key starts with snapshot_id and
--     every reference (snapshot_id, x_id) must match a row x (snapshot_id, id), and every content
--     row's snapshot_id a snapshots row. Checked by statement-level triggers (one anti-join per
--     statement over its transition table) instead of per-row foreign keys: a COPY of 300k links
--     runs one query per reference instead of 600k lookups that each lock the row they find.
--
-- Entity ids are made by the loader as uuid5(kind, slug): the same slug has the same id in every
-- snapshot, so applications can keep ids across versions and snapshots diff by id.

CREATE TABLE snapshots (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL,
    version_label  text NOT NULL,
    description    text,
    -- the snapshot that was current when this one was created (what a merge started from)
    parent_id      uuid REFERENCES snapshots (id) ON DELETE SET NULL,
    -- the snapshot this one replaced when it was promoted: where rollback_import goes back to
    previous_id    uuid REFERENCES snapshots (id) ON DELETE SET NULL,
    status         text NOT NULL DEFAULT 'draft'
                   CHECK (status IN ('draft', 'ready', 'current', 'archived')),
    -- sha256 of the canonical content (entity lists sorted by key, defaults filled in)
    content_hash   text,
    entity_counts  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ready_at       timestamptz,
    promoted_at    timestamptz,
    archived_at    timestamptz
);
CREATE UNIQUE INDEX snapshots_one_current ON snapshots ((true)) WHERE status = 'current';
CREATE INDEX snapshots_content_hash ON snapshots (content_hash) WHERE status IN ('ready', 'current');

COMMENT ON TABLE snapshots IS 'One row per content version; content rows carry its id.';

CREATE SEQUENCE import_lock_seq AS integer CYCLE;

CREATE TABLE import_logs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    version_label   text NOT NULL,
    source_system   text,
    source_version  text,
    created_by      text,
    source_file     text,
    snapshot_id     uuid REFERENCES snapshots (id) ON DELETE SET NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'importing', 'ready', 'promoted', 'failed', 'rolled_back')),
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at    timestamptz,
    entity_counts   jsonb,
    error_message   text,
    error_details   jsonb,
    -- true when the bundle's content matched an existing snapshot and no copy was made
    reused          boolean NOT NULL DEFAULT false,
    -- The importing session holds advisory lock (import_lock_namespace(), lock_key) while it works;
    -- a pending/importing row whose lock is free belongs to a process that died.
    lock_key        integer NOT NULL DEFAULT nextval('import_lock_seq'),
    backend_pid     integer NOT NULL DEFAULT pg_backend_pid()
);
CREATE INDEX import_logs_started_at ON import_logs (started_at DESC);
CREATE INDEX import_logs_in_progress ON import_logs (status) WHERE status IN ('pending', 'importing');

COMMENT ON TABLE import_logs IS 'One row per import attempt, from start_import to its final status.';

-- Content tables. One row is one entity (or junction, or link) of one snapshot.

CREATE TABLE domains (
    snapshot_id   uuid NOT NULL,
    id            uuid NOT NULL,
    name          text NOT NULL,
    slug          text NOT NULL,
    description   text,
    icon          text,
    color         text,
    is_published  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (snapshot_id, id),
    UNIQUE (snapshot_id, slug)
);

CREATE TABLE trails (
    snapshot_id       uuid NOT NULL,
    id                uuid NOT NULL,
    domain_id         uuid NOT NULL,
    title             text NOT NULL,
    slug              text NOT NULL,
    description       text,
    difficulty_level  text NOT NULL,
    is_published      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (snapshot_id, id),
    UNIQUE (snapshot_id, slug)
);
CREATE INDEX trails_domain ON trails (snapshot_id, domain_id);

CREATE TABLE concepts (
    snapshot_id   uuid NOT NULL,
    id            uuid NOT NULL,
    trail_id      uuid,
    title         text NOT NULL,
    slug          text NOT NULL,
    description   text,
    order_index   integer NOT NULL DEFAULT 0,
    is_published  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (snapshot_id, id),
    UNIQUE (snapshot_id, slug)
);
CREATE INDEX concepts_trail ON concepts (snapshot_id, trail_id);

CREATE TABLE sparks (
    snapshot_id        uuid NOT NULL,
    id                 uuid NOT NULL,
    title              text NOT NULL,
    slug               text NOT NULL,
    summary            text,
    content_md         text NOT NULL,
    difficulty_level   text NOT NULL,
    estimated_minutes  integer NOT NULL,
    is_published       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (snapshot_id, id),
    UNIQUE (snapshot_id, slug)
);

CREATE TABLE beacons (
    snapshot_id  uuid NOT NULL,
    id           uuid NOT NULL,
    name         text NOT NULL,
    slug         text NOT NULL,
    description  text,
    category     text,
    PRIMARY KEY (snapshot_id, id),
    UNIQUE (snapshot_id, slug)
);

CREATE TABLE concept_sparks (
    snapshot_id  uuid NOT NULL,
    concept_id   uuid NOT NULL,
    spark_id     uuid NOT NULL,
    order_index  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (snapshot_id, concept_id, spark_id)
);
CREATE INDEX concept_sparks_spark ON concept_sparks (snapshot_id, spark_id);

CREATE TABLE spark_beacons (
    snapshot_id  uuid NOT NULL,
    spark_id     uuid NOT NULL,
    beacon_id    uuid NOT NULL,
    PRIMARY KEY (snapshot_id, spark_id, beacon_id)
);
CREATE INDEX spark_beacons_beacon ON spark_beacons (snapshot_id, beacon_id);

CREATE TABLE spark_links (
    snapshot_id  uuid NOT NULL,
    source_id    uuid NOT NULL,
    target_id    uuid NOT NULL,
    link_type    text NOT NULL,
    weight       double precision NOT NULL,
    description  text,
    PRIMARY KEY (snapshot_id, source_id, target_id),
    CHECK (source_id <> target_id)
);
CREATE INDEX spark_links_target ON spark_links (snapshot_id, target_id);

CREATE TABLE concept_links (
    snapshot_id  uuid NOT NULL,
    source_id    uuid NOT NULL,
    target_id    uuid NOT NULL,
    link_type    text NOT NULL,
    weight       double precision NOT NULL,
    description  text,
    PRIMARY KEY (snapshot_id, source_id, target_id),
    CHECK (source_id <> target_id)
);
CREATE INDEX concept_links_target ON concept_links (snapshot_id, target_id);

-- References. A foreign key would check (and lock) the referenced row once per inserted row; these
-- triggers check a whole statement (a COPY of one table) with one anti-join each, and raise
-- foreign_key_violation like a foreign key would. Instead of row locks, the writer of references
-- holds FOR KEY SHARE on their snapshots rows and a deleter of referenced rows FOR UPDATE, so the
-- two cannot interleave within a snapshot.

-- On a referencing table, after INSERT or UPDATE. TG_ARGV: the referenced table and the referencing
-- column; ('snapshots', 'snapshot_id') checks the snapshot itself.
CREATE FUNCTION content_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_parent text := TG_ARGV[0];
    v_column text := TG_ARGV[1];
    v_snapshot uuid;
    v_ref uuid;
BEGIN
    PERFORM 1 FROM snapshots WHERE id IN (SELECT DISTINCT snapshot_id FROM new_rows) FOR KEY SHARE;
    IF v_parent = 'snapshots' THEN
        SELECT n.snapshot_id, n.snapshot_id INTO v_snapshot, v_ref FROM new_rows n
        WHERE NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.id = n.snapshot_id) LIMIT 1;
    ELSE
        EXECUTE format(
            'SELECT n.snapshot_id, n.%1$I FROM new_rows n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
            '(SELECT 1 FROM %2$I p WHERE p.snapshot_id = n.snapshot_id AND p.id = n.%1$I) LIMIT 1',
            v_column, v_parent) INTO v_snapshot, v_ref;
    END IF;
    IF v_snapshot IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "%" violates reference %.% -> %: % is not in snapshot %',
            TG_TABLE_NAME, TG_TABLE_NAME, v_column, v_parent, v_ref, v_snapshot
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'a row may only refer to rows of its own snapshot';
    END IF;
    RETURN NULL;
END $$;

-- On a referenced table (or snapshots), after DELETE or UPDATE: no remaining row may refer to a key
-- that is gone. TG_ARGV: pairs of (referencing table, referencing column).
CREATE FUNCTION content_check_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i integer := 0;
    v_snapshot uuid;
    v_ref uuid;
BEGIN
    IF TG_TABLE_NAME <> 'snapshots' THEN
        PERFORM 1 FROM snapshots WHERE id IN (SELECT DISTINCT snapshot_id FROM old_rows) FOR UPDATE;
    END IF;
    WHILE i < TG_NARGS LOOP
        IF TG_TABLE_NAME = 'snapshots' THEN
            EXECUTE format(
                'SELECT o.id, o.id FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM snapshots p WHERE p.id = o.id) '
                'AND EXISTS (SELECT 1 FROM %1$I c WHERE c.snapshot_id = o.id) LIMIT 1',
                TG_ARGV[i]) INTO v_snapshot, v_ref;
        ELSE
            EXECUTE format(
                'SELECT o.snapshot_id, o.id FROM old_rows o '
                'WHERE NOT EXISTS (SELECT 1 FROM %1$I p WHERE p.snapshot_id = o.snapshot_id AND p.id = o.id) '
                'AND EXISTS (SELECT 1 FROM %2$I c WHERE c.snapshot_id = o.snapshot_id AND c.%3$I = o.id) LIMIT 1',
                TG_TABLE_NAME, TG_ARGV[i], TG_ARGV[i + 1]) INTO v_snapshot, v_ref;
        END IF;
        IF v_snapshot IS NOT NULL THEN
            RAISE EXCEPTION 'update or delete on table "%" violates reference %.% -> %: % of snapshot % is still referred to',
                TG_TABLE_NAME, TG_ARGV[i], TG_ARGV[i + 1], TG_TABLE_NAME, v_ref, v_snapshot
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'delete the referencing rows first';
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NULL;
END $$;

DO $$
DECLARE
    -- referencing table, column, referenced table
    v_refs text[][] := ARRAY[
        ['domains', 'snapshot_id', 'snapshots'], ['trails', 'snapshot_id', 'snapshots'],
        ['concepts', 'snapshot_id', 'snapshots'], ['sparks', 'snapshot_id', 'snapshots'],
        ['beacons', 'snapshot_id', 'snapshots'],
        ['trails', 'domain_id', 'domains'], ['concepts', 'trail_id', 'trails'],
        ['concept_sparks', 'concept_id', 'concepts'], ['concept_sparks', 'spark_id', 'sparks'],
        ['spark_beacons', 'spark_id', 'sparks'], ['spark_beacons', 'beacon_id', 'beacons'],
        ['spark_links', 'source_id', 'sparks'], ['spark_links', 'target_id', 'sparks'],
        ['concept_links', 'source_id', 'concepts'], ['concept_links', 'target_id', 'concepts']];
    v_parent text;
    v_args text;
    v_event text;
    i integer;
BEGIN
    FOR i IN 1 .. array_length(v_refs, 1) LOOP
        FOREACH v_event IN ARRAY ARRAY['insert', 'update'] LOOP
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING NEW TABLE AS new_rows '
                'FOR EACH STATEMENT EXECUTE FUNCTION content_check_references(%L, %L)',
                format('ref_%s_%s_%s', v_event, v_refs[i][2], v_refs[i][3]), upper(v_event), v_refs[i][1],
                v_refs[i][3], v_refs[i][2]);
        END LOOP;
    END LOOP;
    FOREACH v_parent IN ARRAY ARRAY['snapshots', 'domains', 'trails', 'concepts', 'sparks', 'beacons'] LOOP
        SELECT string_agg(format('%L, %L', v_refs[j][1], v_refs[j][2]), ', ') INTO v_args
        FROM generate_subscripts(v_refs, 1) j WHERE v_refs[j][3] = v_parent;
        FOREACH v_event IN ARRAY ARRAY['delete', 'update'] LOOP
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING OLD TABLE AS old_rows '
                'FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(%s)',
                format('referenced_%s', v_event), upper(v_event), v_parent, v_args);
        END LOOP;
    END LOOP;
END $$;

-- Readers' views: the current snapshot's content, with references as slugs.

CREATE VIEW current_snapshot AS
    SELECT * FROM snapshots WHERE status = 'current';

CREATE VIEW current_domains AS
    SELECT d.* FROM domains d JOIN snapshots s ON s.id = d.snapshot_id AND s.status = 'current';
CREATE VIEW current_trails AS
    SELECT t.*, d.slug AS domain_slug
    FROM trails t JOIN snapshots s ON s.id = t.snapshot_id AND s.status = 'current'
    JOIN domains d ON d.snapshot_id = t.snapshot_id AND d.id = t.domain_id;
CREATE VIEW current_concepts AS
    SELECT c.*, t.slug AS trail_slug
    FROM concepts c JOIN snapshots s ON s.id = c.snapshot_id AND s.status = 'current'
    LEFT JOIN trails t ON t.snapshot_id = c.snapshot_id AND t.id = c.trail_id;
CREATE VIEW current_sparks AS
    SELECT p.* FROM sparks p JOIN snapshots s ON s.id = p.snapshot_id AND s.status = 'current';
CREATE VIEW current_beacons AS
    SELECT b.* FROM beacons b JOIN snapshots s ON s.id = b.snapshot_id AND s.status = 'current';
CREATE VIEW current_concept_sparks AS
    SELECT j.*, c.slug AS concept_slug, p.slug AS spark_slug
    FROM concept_sparks j JOIN snapshots s ON s.id = j.snapshot_id AND s.status = 'current'
    JOIN concepts c ON c.snapshot_id = j.snapshot_id AND c.id = j.concept_id
    JOIN sparks p ON p.snapshot_id = j.snapshot_id AND p.id = j.spark_id;
CREATE VIEW current_spark_beacons AS
    SELECT j.*, p.slug AS spark_slug, b.slug AS beacon_slug
    FROM spark_beacons j JOIN snapshots s ON s.id = j.snapshot_id AND s.status = 'current'
    JOIN sparks p ON p.snapshot_id = j.snapshot_id AND p.id = j.spark_id
    JOIN beacons b ON b.snapshot_id = j.snapshot_id AND b.id = j.beacon_id;
CREATE VIEW current_spark_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM spark_links l JOIN snapshots s ON s.id = l.snapshot_id AND s.status = 'current'
    JOIN sparks a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id
    JOIN sparks b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id;
CREATE VIEW current_concept_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM concept_links l JOIN snapshots s ON s.id = l.snapshot_id AND s.status = 'current'
    JOIN concepts a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id
    JOIN concepts b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id;

-- Lifecycle guards.

CREATE FUNCTION import_lock_namespace() RETURNS integer LANGUAGE sql IMMUTABLE
    AS $$ SELECT 1836413801 $$;  -- the bytes of 'musi'

-- One lifecycle change at a time (promote, rollback, delete, cleanup): a transaction lock, so two
-- racing promotes run one after the other and each sees the other's result.
CREATE FUNCTION lock_snapshot_lifecycle() RETURNS void LANGUAGE sql
    AS $$ SELECT pg_advisory_xact_lock(1836413802, 0) $$;

CREATE FUNCTION snapshots_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status = 'current' THEN
            RAISE EXCEPTION 'snapshot % is the current snapshot and cannot be deleted; promote or roll back to another snapshot first', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF (OLD.status, NEW.status) IN (('draft', 'ready'), ('ready', 'current'), ('current', 'archived'))
       OR (OLD.status = 'archived' AND NEW.status = 'current'
           AND current_setting('musingly.transition', true) = 'rollback') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'snapshot % cannot go from % to %; only a ready snapshot can be promoted, and only rollback_import brings back an archived one',
        OLD.id, OLD.status, NEW.status USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER snapshots_guard_transition
    BEFORE UPDATE OF status OR DELETE ON snapshots
    FOR EACH ROW EXECUTE FUNCTION snapshots_guard_transition();

-- The guide's functions.

CREATE FUNCTION create_import_snapshot(
    p_name text, p_version_label text, p_description text DEFAULT NULL, p_parent_id uuid DEFAULT NULL,
    p_content_hash text DEFAULT NULL
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO snapshots (name, version_label, description, parent_id, content_hash)
    VALUES (coalesce(p_name, p_version_label), p_version_label, p_description,
            coalesce(p_parent_id, (SELECT id FROM snapshots WHERE status = 'current')), p_content_hash)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION create_import_snapshot IS 'Creates a new draft snapshot; the parent defaults to the current one.';

CREATE FUNCTION start_import(
    p_version_label text, p_source_system text DEFAULT NULL, p_source_version text DEFAULT NULL,
    p_created_by text DEFAULT NULL
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_key integer := nextval('import_lock_seq');
    v_id uuid;
BEGIN
    -- Session lock, taken before the row exists: while this session lives, its log is not stale.
    PERFORM pg_advisory_lock(import_lock_namespace(), v_key);
    INSERT INTO import_logs (version_label, source_system, source_version, created_by, lock_key)
    VALUES (p_version_label, p_source_system, p_source_version, coalesce(p_created_by, session_user), v_key)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION start_import IS 'Starts an import log entry (status pending) owned by this session.';

CREATE FUNCTION update_import_status(
    p_import_id uuid, p_status text, p_snapshot_id uuid DEFAULT NULL, p_entity_counts jsonb DEFAULT NULL,
    p_error_details jsonb DEFAULT NULL, p_error_message text DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE import_logs SET
        status = p_status,
        snapshot_id = coalesce(p_snapshot_id, snapshot_id),
        entity_counts = coalesce(p_entity_counts, entity_counts),
        error_details = coalesce(p_error_details, error_details),
        error_message = coalesce(p_error_message, error_message),
        completed_at = CASE WHEN p_status IN ('pending', 'importing') THEN NULL ELSE clock_timestamp() END
    WHERE id = p_import_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'import % does not exist', p_import_id USING ERRCODE = 'no_data_found';
    END IF;
END $$;
COMMENT ON FUNCTION update_import_status IS 'Updates import status and details (import_id, status, snapshot_id, entity_counts, error_details, error_message).';

CREATE FUNCTION finalize_import(p_import_id uuid, p_snapshot_id uuid, p_entity_counts jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE snapshots SET status = 'ready', entity_counts = coalesce(p_entity_counts, '{}'::jsonb),
                         ready_at = clock_timestamp()
    WHERE id = p_snapshot_id AND status = 'draft';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'snapshot % is not a draft; only a draft snapshot can be finalized', p_snapshot_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM update_import_status(p_import_id, 'ready', p_snapshot_id, p_entity_counts);
END $$;
COMMENT ON FUNCTION finalize_import IS 'Marks the draft snapshot and its import ready.';

CREATE FUNCTION promote_import(p_import_id uuid, p_snapshot_id uuid DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_log import_logs%ROWTYPE;
    v_snap snapshots%ROWTYPE;
    v_current uuid;
BEGIN
    PERFORM lock_snapshot_lifecycle();
    SELECT * INTO v_log FROM import_logs WHERE id = p_import_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'import % does not exist; see `musingly imports`', p_import_id USING ERRCODE = 'no_data_found';
    END IF;
    IF p_snapshot_id IS NOT NULL AND v_log.snapshot_id IS DISTINCT FROM p_snapshot_id THEN
        RAISE EXCEPTION 'import % made snapshot %, not %', p_import_id, v_log.snapshot_id, p_snapshot_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_log.status NOT IN ('ready', 'promoted') OR v_log.snapshot_id IS NULL THEN
        RAISE EXCEPTION 'import % is %, not ready; only a ready import can be promoted', p_import_id, v_log.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO v_snap FROM snapshots WHERE id = v_log.snapshot_id FOR UPDATE;
    IF v_snap.status = 'current' THEN  -- already current (same content imported again): nothing moves
        UPDATE import_logs SET status = 'promoted', completed_at = clock_timestamp() WHERE id = p_import_id;
        RETURN v_snap.id;
    END IF;
    IF v_snap.status <> 'ready' THEN
        RAISE EXCEPTION 'snapshot % is %, not ready; only a ready snapshot can be promoted (use rollback_import to return to an archived one)',
            v_snap.id, v_snap.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE snapshots SET status = 'archived', archived_at = clock_timestamp()
    WHERE status = 'current' RETURNING id INTO v_current;
    UPDATE snapshots SET status = 'current', promoted_at = clock_timestamp(), previous_id = v_current
    WHERE id = v_snap.id;
    UPDATE import_logs SET status = 'promoted', completed_at = clock_timestamp() WHERE id = p_import_id;
    RETURN v_snap.id;
END $$;
COMMENT ON FUNCTION promote_import IS 'Promotes the import''s ready snapshot to current; the previous current one is archived.';

CREATE FUNCTION rollback_import(p_import_id uuid DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_current snapshots%ROWTYPE;
    v_log_snapshot uuid;
BEGIN
    PERFORM lock_snapshot_lifecycle();
    SELECT * INTO v_current FROM snapshots WHERE status = 'current' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no current snapshot to roll back' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF p_import_id IS NOT NULL THEN
        SELECT snapshot_id INTO v_log_snapshot FROM import_logs WHERE id = p_import_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'import % does not exist; see `musingly imports`', p_import_id USING ERRCODE = 'no_data_found';
        END IF;
        IF v_log_snapshot IS DISTINCT FROM v_current.id THEN
            RAISE EXCEPTION 'import %''s snapshot is not the current one; only the current snapshot can be rolled back', p_import_id
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    IF v_current.previous_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM snapshots WHERE id = v_current.previous_id AND status = 'archived') THEN
        RAISE EXCEPTION 'snapshot % (%) has no previous snapshot to roll back to', v_current.id, v_current.version_label
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE snapshots SET status = 'archived', archived_at = clock_timestamp() WHERE id = v_current.id;
    PERFORM set_config('musingly.transition', 'rollback', true);
    UPDATE snapshots SET status = 'current', archived_at = NULL WHERE id = v_current.previous_id;
    PERFORM set_config('musingly.transition', '', true);
    UPDATE import_logs SET status = 'rolled_back', completed_at = clock_timestamp()
    WHERE snapshot_id = v_current.id AND status = 'promoted'
      AND (p_import_id IS NULL OR id = p_import_id);
    RETURN v_current.previous_id;
END $$;
COMMENT ON FUNCTION rollback_import IS 'Rolls back to the snapshot the current one replaced; returns its id.';

CREATE FUNCTION delete_snapshot_content(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Referencing tables first, so no foreign key has anything left to check.
    DELETE FROM concept_links WHERE snapshot_id = p_snapshot_id;
    DELETE FROM spark_links WHERE snapshot_id = p_snapshot_id;
    DELETE FROM spark_beacons WHERE snapshot_id = p_snapshot_id;
    DELETE FROM concept_sparks WHERE snapshot_id = p_snapshot_id;
    DELETE FROM beacons WHERE snapshot_id = p_snapshot_id;
    DELETE FROM sparks WHERE snapshot_id = p_snapshot_id;
    DELETE FROM concepts WHERE snapshot_id = p_snapshot_id;
    DELETE FROM trails WHERE snapshot_id = p_snapshot_id;
    DELETE FROM domains WHERE snapshot_id = p_snapshot_id;
    UPDATE import_logs SET status = 'failed', completed_at = coalesce(completed_at, clock_timestamp()),
                           error_message = 'its snapshot was deleted before promotion'
    WHERE snapshot_id = p_snapshot_id AND status IN ('pending', 'importing', 'ready');
    DELETE FROM snapshots WHERE id = p_snapshot_id;
END $$;

CREATE FUNCTION delete_draft_snapshot(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    PERFORM lock_snapshot_lifecycle();
    SELECT status INTO v_status FROM snapshots WHERE id = p_snapshot_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'snapshot % does not exist; see `musingly snapshots`', p_snapshot_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v_status NOT IN ('draft', 'ready') THEN
        RAISE EXCEPTION 'snapshot % is %; only a draft or ready (never promoted) snapshot can be deleted this way', p_snapshot_id, v_status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM delete_snapshot_content(p_snapshot_id);
END $$;
COMMENT ON FUNCTION delete_draft_snapshot IS 'Deletes a draft (or ready, never promoted) snapshot and its data.';

CREATE FUNCTION cleanup_old_snapshots(p_keep_count integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_deleted integer := 0;
BEGIN
    IF p_keep_count IS NULL OR p_keep_count < 1 THEN
        RAISE EXCEPTION 'keep_count must be at least 1 (the current snapshot is always kept)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lock_snapshot_lifecycle();
    -- Published snapshots (current and archived), newest promotion first; past keep_count, the
    -- archived ones are deleted. Drafts and ready snapshots await review and are left alone.
    FOR v_id IN
        SELECT id FROM (
            SELECT id, status, row_number() OVER (ORDER BY (status = 'current') DESC, promoted_at DESC NULLS LAST, created_at DESC) AS n
            FROM snapshots WHERE status IN ('current', 'archived')
        ) ranked
        WHERE n > p_keep_count AND status = 'archived'
    LOOP
        PERFORM delete_snapshot_content(v_id);
        v_deleted := v_deleted + 1;
    END LOOP;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION cleanup_old_snapshots IS 'Keeps the keep_count most recently published snapshots, deletes older archived ones; returns how many.';

CREATE FUNCTION get_import_stats(p_days integer DEFAULT 30)
RETURNS TABLE (
    total_imports bigint, ready bigint, promoted bigint, failed bigint, rolled_back bigint,
    in_progress bigint, avg_duration_seconds numeric, last_import_at timestamptz, last_success_at timestamptz
) LANGUAGE sql STABLE AS $$
    SELECT count(*),
           count(*) FILTER (WHERE status = 'ready'),
           count(*) FILTER (WHERE status = 'promoted'),
           count(*) FILTER (WHERE status = 'failed'),
           count(*) FILTER (WHERE status = 'rolled_back'),
           count(*) FILTER (WHERE status IN ('pending', 'importing')),
           round(avg(extract(epoch FROM completed_at - started_at))
                 FILTER (WHERE status IN ('ready', 'promoted', 'rolled_back'))::numeric, 3),
           max(started_at),
           max(completed_at) FILTER (WHERE status IN ('ready', 'promoted', 'rolled_back'))
    FROM import_logs
    WHERE started_at >= now() - make_interval(days => p_days)
$$;
COMMENT ON FUNCTION get_import_stats IS 'Import counts per status and mean duration over the last p_days days.';

-- Not in the guide: mark the logs of importing sessions that died (kill -9, lost connection) failed.
CREATE FUNCTION fail_stale_imports() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_row record;
    v_failed integer := 0;
BEGIN
    FOR v_row IN
        SELECT id, lock_key FROM import_logs
        WHERE status IN ('pending', 'importing') AND backend_pid <> pg_backend_pid()
        FOR UPDATE SKIP LOCKED
    LOOP
        -- Free lock: its session is gone. The transaction lock is released at commit.
        IF pg_try_advisory_xact_lock(import_lock_namespace(), v_row.lock_key) THEN
            UPDATE import_logs SET status = 'failed', completed_at = clock_timestamp(),
                error_message = 'the importing process ended before finishing (killed or disconnected); nothing of it was kept, run the import again'
            WHERE id = v_row.id;
            v_failed := v_failed + 1;
        END IF;
    END LOOP;
    RETURN v_failed;
END $$;
COMMENT ON FUNCTION fail_stale_imports IS 'Marks pending/importing logs whose session has ended as failed; returns how many.';
