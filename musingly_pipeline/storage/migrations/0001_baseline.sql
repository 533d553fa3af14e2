-- The baseline: the whole schema, each object once, in its live form.
--
-- It is the schema the first migration chain (legacy/0001 ... legacy/0009) left behind, written
-- again as one file: a database made by that chain and one made by this file are the same, object by
-- object (musingly_pipeline_tests/storage/test_migrations.py checks it). A database made by the old
-- chain is brought up to date by the rest of that chain and then records this file as applied
-- without running it (see musingly_pipeline/storage/migrations.py). Later changes go in 0002_*.sql
-- onwards; never edit this file once it is applied.
--
-- Areas, in this order:
--   1. The snapshot store (bundles): snapshots, import logs, the content tables partitioned by
--      snapshot, their reference checks, the lifecycle functions of the guide, the readers' views.
--   2. Staged bundles and inbox pushes: the exact bytes of accepted bundle files.
--   3. Seed units: users, units and everything a unit file holds.
--   4. Import batches: batches, items, applied keys, the audit log and two report views.
--   5. Signals: the signal store's PostgreSQL backend.


-- =============================================================================================
-- 1. The snapshot store
-- =============================================================================================
--
-- Immutable content snapshots, their import log, and the guide's lifecycle functions
-- (create_import_snapshot ... get_import_stats), callable from psql.
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
--     statement over its transition table) and, for bulk loads, by finish_snapshot_partition,
--     instead of per-row foreign keys.
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

-- ---------------------------------------------------------------------------------------------
-- Content tables. One row is one entity (or junction, or link) of one snapshot. Each table is
-- partitioned by snapshot: one partition per snapshot and table, named snapshot_partition(table,
-- snapshot), e.g. sparks_6f1c...(32 hex digits). A snapshot is written once, whole, and then only
-- read or dropped: loading it into a fresh table and building the indexes by sort costs less than
-- half of inserting every key into large live B-trees. An import:
--
--   1. prepare_snapshot_partition(table, snapshot): a plain table shaped like the content table
--      (same columns, defaults, CHECKs, plus CHECK (snapshot_id = ...)), visible to no one else;
--   2. COPY into it;
--   3. finish_snapshot_partition(table, snapshot): builds its keys and indexes (the parent's, by
--      sort), checks its references against the snapshot's already attached tables, and attaches
--      it (the CHECK proves the partition bound: no scan).
--
-- Tables go in dependency order (content_tables()), so each reference finds its target attached.
-- Everything happens in the import's transaction: a failed or killed import leaves no table behind.
-- The guide's create_import_snapshot creates a snapshot's partitions attached and empty (rows then
-- INSERTed through the parents are checked by the statement triggers below);
-- delete_snapshot_content drops a snapshot's partitions.
--
-- Locks: attaching takes SHARE UPDATE EXCLUSIVE on the parent until commit (two imports attach one
-- after the other; readers and writers of other snapshots are not blocked); dropping a partition
-- (delete-draft, cleanup) takes ACCESS EXCLUSIVE on the parent for the rest of that short
-- transaction. Both go through the tables in content_tables() order, so they cannot deadlock.

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
) PARTITION BY LIST (snapshot_id);

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
) PARTITION BY LIST (snapshot_id);
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
) PARTITION BY LIST (snapshot_id);
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
) PARTITION BY LIST (snapshot_id);

CREATE TABLE beacons (
    snapshot_id  uuid NOT NULL,
    id           uuid NOT NULL,
    name         text NOT NULL,
    slug         text NOT NULL,
    description  text,
    category     text,
    PRIMARY KEY (snapshot_id, id),
    UNIQUE (snapshot_id, slug)
) PARTITION BY LIST (snapshot_id);

CREATE TABLE concept_sparks (
    snapshot_id  uuid NOT NULL,
    concept_id   uuid NOT NULL,
    spark_id     uuid NOT NULL,
    order_index  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (snapshot_id, concept_id, spark_id)
) PARTITION BY LIST (snapshot_id);
CREATE INDEX concept_sparks_spark ON concept_sparks (snapshot_id, spark_id);

CREATE TABLE spark_beacons (
    snapshot_id  uuid NOT NULL,
    spark_id     uuid NOT NULL,
    beacon_id    uuid NOT NULL,
    PRIMARY KEY (snapshot_id, spark_id, beacon_id)
) PARTITION BY LIST (snapshot_id);
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
) PARTITION BY LIST (snapshot_id);
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
) PARTITION BY LIST (snapshot_id);
CREATE INDEX concept_links_target ON concept_links (snapshot_id, target_id);

-- The content tables in dependency order, and their references (referencing table and column,
-- referenced table): the one list the partition functions work from.
CREATE FUNCTION content_tables() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['domains', 'trails', 'concepts', 'sparks', 'beacons', 'concept_sparks', 'spark_beacons',
                 'spark_links', 'concept_links']
$$;

CREATE FUNCTION content_references(OUT referencing text, OUT ref_column text, OUT referenced text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
    VALUES ('domains', 'snapshot_id', 'snapshots'), ('trails', 'snapshot_id', 'snapshots'),
           ('concepts', 'snapshot_id', 'snapshots'), ('sparks', 'snapshot_id', 'snapshots'),
           ('beacons', 'snapshot_id', 'snapshots'),
           ('trails', 'domain_id', 'domains'), ('concepts', 'trail_id', 'trails'),
           ('concept_sparks', 'concept_id', 'concepts'), ('concept_sparks', 'spark_id', 'sparks'),
           ('spark_beacons', 'spark_id', 'sparks'), ('spark_beacons', 'beacon_id', 'beacons'),
           ('spark_links', 'source_id', 'sparks'), ('spark_links', 'target_id', 'sparks'),
           ('concept_links', 'source_id', 'concepts'), ('concept_links', 'target_id', 'concepts')
$$;

-- The partition of table p_table holding snapshot p_snapshot_id, e.g. sparks_6f1c...(32 hex digits).
CREATE FUNCTION snapshot_partition(p_table text, p_snapshot_id uuid) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT p_table || '_' || replace(p_snapshot_id::text, '-', '')
$$;

-- The partitions of a snapshot, attached and empty (the guide's path: rows INSERTed afterwards).
CREATE FUNCTION create_snapshot_partitions(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES IN (%L)',
                       snapshot_partition(v_table, p_snapshot_id), v_table, p_snapshot_id);
    END LOOP;
END $$;

-- A detached table to bulk-load one table of a snapshot into; returns its name.
CREATE FUNCTION prepare_snapshot_partition(p_table text, p_snapshot_id uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_name text := snapshot_partition(p_table, p_snapshot_id);
BEGIN
    IF NOT p_table = ANY (content_tables()) THEN
        RAISE EXCEPTION '% is not a content table', p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                   'CONSTRAINT %I CHECK (snapshot_id = %L::uuid))',
                   v_name, p_table, left(v_name, 57) || '_bound', p_snapshot_id);
    RETURN v_name;
END $$;

-- Keys, indexes, reference checks and ATTACH for a table made by prepare_snapshot_partition.
-- The reference checks follow the same rules and raise the same error as content_check_references.
-- Nested loops are off: the reference checks are anti-joins over whole tables, best hashed.
CREATE FUNCTION finish_snapshot_partition(p_table text, p_snapshot_id uuid) RETURNS void
LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
    v_name text := snapshot_partition(p_table, p_snapshot_id);
    v_parent regclass := p_table::regclass;
    v_def text;
    v_ref record;
    v_bad uuid;
BEGIN
    -- The parent's primary key and unique constraints, then its other indexes, built by sort.
    FOR v_def IN SELECT pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = v_parent AND contype IN ('p', 'u') ORDER BY contype, conname LOOP
        EXECUTE format('ALTER TABLE %I ADD %s', v_name, v_def);
    END LOOP;
    FOR v_def IN SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$') FROM pg_index i
                 WHERE i.indrelid = v_parent
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                 ORDER BY i.indexrelid LOOP
        EXECUTE format('CREATE INDEX ON %I %s', v_name, v_def);
    END LOOP;
    -- References: the same rules and errors as content_check_references.
    FOR v_ref IN SELECT * FROM content_references() WHERE referencing = p_table LOOP
        IF v_ref.referenced = 'snapshots' THEN
            PERFORM 1 FROM snapshots WHERE id = p_snapshot_id FOR KEY SHARE;
            IF NOT FOUND THEN
                EXECUTE format('SELECT snapshot_id FROM %I LIMIT 1', v_name) INTO v_bad;
            END IF;
        ELSE
            EXECUTE format('SELECT n.%1$I FROM %2$I n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
                           '(SELECT 1 FROM %3$I p WHERE p.id = n.%1$I)',
                           v_ref.ref_column, v_name, snapshot_partition(v_ref.referenced, p_snapshot_id))
                INTO v_bad;
        END IF;
        IF v_bad IS NOT NULL THEN
            RAISE EXCEPTION 'insert or update on table "%" violates reference %.% -> %: % is not in snapshot %',
                p_table, p_table, v_ref.ref_column, v_ref.referenced, v_bad, p_snapshot_id
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'a row may only refer to rows of its own snapshot';
        END IF;
    END LOOP;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)', p_table, v_name, p_snapshot_id);
END $$;

-- ---------------------------------------------------------------------------------------------
-- References of rows written through the parents. A foreign key would check (and lock) the
-- referenced row once per inserted row; these triggers check a whole statement with one anti-join
-- each (statement triggers with transition tables see the rows of every partition a statement
-- writes), and raise foreign_key_violation like a foreign key would. Instead of row locks, the
-- writer of references holds FOR KEY SHARE on their snapshots rows and a deleter of referenced rows
-- FOR UPDATE, so the two cannot interleave within a snapshot.

-- On a referencing table, after INSERT or UPDATE. TG_ARGV: the referenced table and the referencing
-- column; ('snapshots', 'snapshot_id') checks the snapshot itself.
--
-- With "LIMIT 1" the planner expects to find a missing reference early and picks a nested loop: one
-- index probe of the referenced table per inserted row. That suits an INSERT of a few rows but costs
-- 0.6 s per reference column for a 300k-row COPY. From c_bulk_rows rows of one snapshot on, the
-- check is asked without the LIMIT and with the snapshot as a parameter, so the planner picks a hash
-- anti join whose hash side reads only that snapshot's rows of the referenced table.
CREATE FUNCTION content_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c_bulk_rows constant bigint := 20000;
    v_parent text := TG_ARGV[0];
    v_column text := TG_ARGV[1];
    v_snapshots uuid[];
    v_rows bigint;
    v_snapshot uuid;
    v_ref uuid;
BEGIN
    SELECT array_agg(DISTINCT snapshot_id), count(*) INTO v_snapshots, v_rows FROM new_rows;
    PERFORM 1 FROM snapshots WHERE id = ANY (v_snapshots) FOR KEY SHARE;
    IF v_parent = 'snapshots' THEN
        SELECT s, s INTO v_snapshot, v_ref FROM unnest(v_snapshots) AS s
        WHERE NOT EXISTS (SELECT 1 FROM snapshots p WHERE p.id = s) LIMIT 1;
    ELSIF v_rows < c_bulk_rows OR cardinality(v_snapshots) > 1 THEN
        EXECUTE format(
            'SELECT n.snapshot_id, n.%1$I FROM new_rows n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
            '(SELECT 1 FROM %2$I p WHERE p.snapshot_id = n.snapshot_id AND p.id = n.%1$I) LIMIT 1',
            v_column, v_parent) INTO v_snapshot, v_ref;
    ELSE
        v_snapshot := v_snapshots[1];
        EXECUTE format(
            'SELECT n.%1$I FROM new_rows n WHERE n.%1$I IS NOT NULL AND NOT EXISTS '
            '(SELECT 1 FROM %2$I p WHERE p.snapshot_id = $1 AND p.id = n.%1$I)',
            v_column, v_parent) INTO v_ref USING v_snapshot;
        IF v_ref IS NULL THEN
            v_snapshot := NULL;
        END IF;
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

-- One trigger per reference of content_references() and event: ref_<event>_<column>_<referenced>.
CREATE TRIGGER ref_insert_snapshot_id_snapshots AFTER INSERT ON domains REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');
CREATE TRIGGER ref_update_snapshot_id_snapshots AFTER UPDATE ON domains REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');

CREATE TRIGGER ref_insert_snapshot_id_snapshots AFTER INSERT ON trails REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');
CREATE TRIGGER ref_update_snapshot_id_snapshots AFTER UPDATE ON trails REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');
CREATE TRIGGER ref_insert_domain_id_domains AFTER INSERT ON trails REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('domains', 'domain_id');
CREATE TRIGGER ref_update_domain_id_domains AFTER UPDATE ON trails REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('domains', 'domain_id');

CREATE TRIGGER ref_insert_snapshot_id_snapshots AFTER INSERT ON concepts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');
CREATE TRIGGER ref_update_snapshot_id_snapshots AFTER UPDATE ON concepts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');
CREATE TRIGGER ref_insert_trail_id_trails AFTER INSERT ON concepts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('trails', 'trail_id');
CREATE TRIGGER ref_update_trail_id_trails AFTER UPDATE ON concepts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('trails', 'trail_id');

CREATE TRIGGER ref_insert_snapshot_id_snapshots AFTER INSERT ON sparks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');
CREATE TRIGGER ref_update_snapshot_id_snapshots AFTER UPDATE ON sparks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');

CREATE TRIGGER ref_insert_snapshot_id_snapshots AFTER INSERT ON beacons REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');
CREATE TRIGGER ref_update_snapshot_id_snapshots AFTER UPDATE ON beacons REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('snapshots', 'snapshot_id');

CREATE TRIGGER ref_insert_concept_id_concepts AFTER INSERT ON concept_sparks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('concepts', 'concept_id');
CREATE TRIGGER ref_update_concept_id_concepts AFTER UPDATE ON concept_sparks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('concepts', 'concept_id');
CREATE TRIGGER ref_insert_spark_id_sparks AFTER INSERT ON concept_sparks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'spark_id');
CREATE TRIGGER ref_update_spark_id_sparks AFTER UPDATE ON concept_sparks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'spark_id');

CREATE TRIGGER ref_insert_spark_id_sparks AFTER INSERT ON spark_beacons REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'spark_id');
CREATE TRIGGER ref_update_spark_id_sparks AFTER UPDATE ON spark_beacons REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'spark_id');
CREATE TRIGGER ref_insert_beacon_id_beacons AFTER INSERT ON spark_beacons REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('beacons', 'beacon_id');
CREATE TRIGGER ref_update_beacon_id_beacons AFTER UPDATE ON spark_beacons REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('beacons', 'beacon_id');

CREATE TRIGGER ref_insert_source_id_sparks AFTER INSERT ON spark_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'source_id');
CREATE TRIGGER ref_update_source_id_sparks AFTER UPDATE ON spark_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'source_id');
CREATE TRIGGER ref_insert_target_id_sparks AFTER INSERT ON spark_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'target_id');
CREATE TRIGGER ref_update_target_id_sparks AFTER UPDATE ON spark_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('sparks', 'target_id');

CREATE TRIGGER ref_insert_source_id_concepts AFTER INSERT ON concept_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('concepts', 'source_id');
CREATE TRIGGER ref_update_source_id_concepts AFTER UPDATE ON concept_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('concepts', 'source_id');
CREATE TRIGGER ref_insert_target_id_concepts AFTER INSERT ON concept_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('concepts', 'target_id');
CREATE TRIGGER ref_update_target_id_concepts AFTER UPDATE ON concept_links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_references('concepts', 'target_id');

-- One pair per referenced table (snapshots included): its referencing (table, column) pairs.
CREATE TRIGGER referenced_delete AFTER DELETE ON snapshots REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(
        'domains', 'snapshot_id', 'trails', 'snapshot_id', 'concepts', 'snapshot_id', 'sparks', 'snapshot_id',
        'beacons', 'snapshot_id');
CREATE TRIGGER referenced_update AFTER UPDATE ON snapshots REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(
        'domains', 'snapshot_id', 'trails', 'snapshot_id', 'concepts', 'snapshot_id', 'sparks', 'snapshot_id',
        'beacons', 'snapshot_id');
CREATE TRIGGER referenced_delete AFTER DELETE ON domains REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced('trails', 'domain_id');
CREATE TRIGGER referenced_update AFTER UPDATE ON domains REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced('trails', 'domain_id');
CREATE TRIGGER referenced_delete AFTER DELETE ON trails REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced('concepts', 'trail_id');
CREATE TRIGGER referenced_update AFTER UPDATE ON trails REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced('concepts', 'trail_id');
CREATE TRIGGER referenced_delete AFTER DELETE ON concepts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(
        'concept_sparks', 'concept_id', 'concept_links', 'source_id', 'concept_links', 'target_id');
CREATE TRIGGER referenced_update AFTER UPDATE ON concepts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(
        'concept_sparks', 'concept_id', 'concept_links', 'source_id', 'concept_links', 'target_id');
CREATE TRIGGER referenced_delete AFTER DELETE ON sparks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(
        'concept_sparks', 'spark_id', 'spark_beacons', 'spark_id', 'spark_links', 'source_id', 'spark_links', 'target_id');
CREATE TRIGGER referenced_update AFTER UPDATE ON sparks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced(
        'concept_sparks', 'spark_id', 'spark_beacons', 'spark_id', 'spark_links', 'source_id', 'spark_links', 'target_id');
CREATE TRIGGER referenced_delete AFTER DELETE ON beacons REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced('spark_beacons', 'beacon_id');
CREATE TRIGGER referenced_update AFTER UPDATE ON beacons REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION content_check_referenced('spark_beacons', 'beacon_id');

-- ---------------------------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------------------------
-- The guide's functions (and the few the loader adds).
--
-- Lock order: an import holds its parent snapshot's row (FOR KEY SHARE) for its whole transaction
-- and then takes the content tables' locks, table after table. Everything that deletes snapshots
-- locks their rows first, before any table: the two wait for each other in one order (rows, then
-- tables), so they cannot deadlock. (An import reusing a snapshot locks its row too, after rolling
-- its own load back: see the bundle import.)

-- The snapshot row alone: the bulk loader adds each partition itself (prepare/finish above). The
-- parent is locked first; a parent deleted meanwhile (archived by a promote, then cleaned up) gives
-- way to the snapshot current now, which is what "current at creation" means at this point.
CREATE FUNCTION create_snapshot_row(
    p_name text, p_version_label text, p_description text DEFAULT NULL, p_parent_id uuid DEFAULT NULL,
    p_content_hash text DEFAULT NULL
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_parent uuid;
    v_id uuid;
BEGIN
    IF p_parent_id IS NOT NULL THEN
        SELECT id INTO v_parent FROM snapshots WHERE id = p_parent_id FOR KEY SHARE;
    END IF;
    IF v_parent IS NULL THEN
        SELECT id INTO v_parent FROM snapshots WHERE status = 'current' FOR KEY SHARE;
    END IF;
    INSERT INTO snapshots (name, version_label, description, parent_id, content_hash)
    VALUES (coalesce(p_name, p_version_label), p_version_label, p_description, v_parent, p_content_hash)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION create_snapshot_row IS 'Creates a new draft snapshot row without partitions (the bulk loader adds them); locks its parent first.';

-- The guide's function: the snapshot row, then its (empty, attached) partitions.
CREATE FUNCTION create_import_snapshot(
    p_name text, p_version_label text, p_description text DEFAULT NULL, p_parent_id uuid DEFAULT NULL,
    p_content_hash text DEFAULT NULL
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid := create_snapshot_row(p_name, p_version_label, p_description, p_parent_id, p_content_hash);
BEGIN
    PERFORM create_snapshot_partitions(v_id);
    RETURN v_id;
END $$;
COMMENT ON FUNCTION create_import_snapshot IS 'Creates a new draft snapshot (and its empty partitions); the parent defaults to the current one.';

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

-- Two imports of the same content share one snapshot: promoting it promotes every ready log of it
-- (the reuse path records a reuse of the current snapshot as 'promoted' itself), and a rollback
-- rolls them all back.
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
    -- The status first: a log whose snapshot was deleted (delete-draft) is failed, and says why.
    IF v_log.status NOT IN ('ready', 'promoted') OR v_log.snapshot_id IS NULL THEN
        RAISE EXCEPTION 'import % is %, not ready; only a ready import can be promoted', p_import_id,
            v_log.status || coalesce(' (' || v_log.error_message || ')', '')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF p_snapshot_id IS NOT NULL AND v_log.snapshot_id IS DISTINCT FROM p_snapshot_id THEN
        RAISE EXCEPTION 'import % made snapshot %, not %', p_import_id, v_log.snapshot_id, p_snapshot_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_snap FROM snapshots WHERE id = v_log.snapshot_id FOR UPDATE;
    IF v_snap.status = 'current' THEN  -- already current (same content imported again): nothing moves
        UPDATE import_logs SET status = 'promoted', completed_at = clock_timestamp()
        WHERE id = p_import_id OR (snapshot_id = v_snap.id AND status = 'ready');
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
    UPDATE import_logs SET status = 'promoted', completed_at = clock_timestamp()
    WHERE id = p_import_id OR (snapshot_id = v_snap.id AND status = 'ready');
    RETURN v_snap.id;
END $$;
COMMENT ON FUNCTION promote_import IS 'Promotes the import''s ready snapshot to current (with every ready log of it); the previous current one is archived.';

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

-- A snapshot's content goes with its partitions (in content_tables() order, as imports attach),
-- the snapshot row locked before any partition is dropped.
CREATE FUNCTION delete_snapshot_content(p_snapshot_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
BEGIN
    PERFORM 1 FROM snapshots WHERE id = p_snapshot_id FOR UPDATE;
    FOREACH v_table IN ARRAY content_tables() LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', snapshot_partition(v_table, p_snapshot_id));
    END LOOP;
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

-- Locks every snapshot it deletes (in id order) before dropping the first partition.
CREATE FUNCTION cleanup_old_snapshots(p_keep_count integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    v_id uuid;
BEGIN
    IF p_keep_count IS NULL OR p_keep_count < 1 THEN
        RAISE EXCEPTION 'keep_count must be at least 1 (the current snapshot is always kept)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lock_snapshot_lifecycle();
    -- Published snapshots (current and archived), newest promotion first; past keep_count, the
    -- archived ones are deleted. Drafts and ready snapshots await review and are left alone.
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v_ids FROM (
        SELECT id, status, row_number() OVER (ORDER BY (status = 'current') DESC, promoted_at DESC NULLS LAST, created_at DESC) AS n
        FROM snapshots WHERE status IN ('current', 'archived')
    ) ranked
    WHERE n > p_keep_count AND status = 'archived';
    PERFORM 1 FROM snapshots WHERE id = ANY (v_ids) ORDER BY id FOR UPDATE;
    FOREACH v_id IN ARRAY v_ids LOOP
        PERFORM delete_snapshot_content(v_id);
    END LOOP;
    RETURN cardinality(v_ids);
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

-- ---------------------------------------------------------------------------------------------
-- Readers' views: the current snapshot's content, with references as slugs. The current
-- snapshot's id is a parameter (an InitPlan) instead of a join, so every table in them is pruned
-- to that snapshot's partition when the query starts.

CREATE VIEW current_snapshot AS
    SELECT * FROM snapshots WHERE status = 'current';

CREATE VIEW current_domains AS
    SELECT d.* FROM domains d WHERE d.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_trails AS
    SELECT t.*, d.slug AS domain_slug
    FROM trails t JOIN domains d ON d.snapshot_id = t.snapshot_id AND d.id = t.domain_id
    WHERE t.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_concepts AS
    SELECT c.*, t.slug AS trail_slug
    FROM concepts c LEFT JOIN trails t ON t.snapshot_id = c.snapshot_id AND t.id = c.trail_id
    WHERE c.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_sparks AS
    SELECT p.* FROM sparks p WHERE p.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_beacons AS
    SELECT b.* FROM beacons b WHERE b.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_concept_sparks AS
    SELECT j.*, c.slug AS concept_slug, p.slug AS spark_slug
    FROM concept_sparks j
    JOIN concepts c ON c.snapshot_id = j.snapshot_id AND c.id = j.concept_id
    JOIN sparks p ON p.snapshot_id = j.snapshot_id AND p.id = j.spark_id
    WHERE j.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_spark_beacons AS
    SELECT j.*, p.slug AS spark_slug, b.slug AS beacon_slug
    FROM spark_beacons j
    JOIN sparks p ON p.snapshot_id = j.snapshot_id AND p.id = j.spark_id
    JOIN beacons b ON b.snapshot_id = j.snapshot_id AND b.id = j.beacon_id
    WHERE j.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_spark_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM spark_links l
    JOIN sparks a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id
    JOIN sparks b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id
    WHERE l.snapshot_id = (SELECT id FROM current_snapshot);
CREATE VIEW current_concept_links AS
    SELECT l.*, a.slug AS source_slug, b.slug AS target_slug
    FROM concept_links l
    JOIN concepts a ON a.snapshot_id = l.snapshot_id AND a.id = l.source_id
    JOIN concepts b ON b.snapshot_id = l.snapshot_id AND b.id = l.target_id
    WHERE l.snapshot_id = (SELECT id FROM current_snapshot);


-- =============================================================================================
-- 2. Staged bundles and inbox pushes
-- =============================================================================================
--
-- Staged bundles: the exact bytes of a bundle file accepted for import, content-addressed by
-- sha256, so that any process on any machine imports the bytes a run names, not whatever a shared
-- folder holds by then. A bundle may be up to 1 GiB, so its bytes are split into chunks (one bytea
-- value may not exceed 1 GB, and a client would need it all in memory at once).
--
-- A file is written in one transaction: its chunks first, under a fresh upload id, while it is
-- hashed; then the staged_bundles row names the upload by the hash. If that hash is already staged
-- (ON CONFLICT DO NOTHING), the transaction is rolled back and the chunks vanish with it.

CREATE TABLE staged_bundle_chunks (
    upload_id  uuid    NOT NULL,
    seq        integer NOT NULL CHECK (seq >= 0),
    data       bytea   NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
-- JSON compresses well, but compressing each chunk costs more time than the disk it saves here:
-- staged bundles are kept only until they are cleaned up.
ALTER TABLE staged_bundle_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE staged_bundles (
    sha256     text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    upload_id  uuid        NOT NULL UNIQUE,
    size       bigint      NOT NULL CHECK (size >= 0),
    chunks     integer     NOT NULL CHECK (chunks >= 0),
    source     text,
    staged_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE staged_bundles IS
    'Bundle files accepted for import, by sha256; their bytes are the chunks of upload_id in staged_bundle_chunks.';

-- Bundles handed in without a shared folder (`musingly inbox push`, `POST /api/bundles`): each push
-- names a staged bundle (by sha256) under an inbox file name. The inbox sensor reads the pushes it
-- has not seen yet, in id order, as it reads files dropped into the inbox folder.
CREATE TABLE inbox_pushes (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL CHECK (name ~ '^(incremental/)?[^/.][^/]*\.json$'),
    sha256     text        NOT NULL REFERENCES staged_bundles (sha256) ON DELETE CASCADE,
    pushed_by  text,
    pushed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_pushes_by_name ON inbox_pushes (name, id);

COMMENT ON TABLE inbox_pushes IS
    'Bundles handed in by push: an inbox file name and the staged bytes (sha256); read by the inbox sensor.';


-- =============================================================================================
-- 3. Seed units (shared/seeds/001): users, units and everything a unit file holds
-- =============================================================================================
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


-- =============================================================================================
-- 4. Import batches
-- =============================================================================================
--
-- One row per batch, one per item, the keys of items already applied, and an audit log
-- (import_batch_logs: import_logs belongs to the snapshot store).

CREATE TABLE import_batches (
    id              uuid PRIMARY KEY,
    batch_type      text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    total_items     integer NOT NULL CHECK (total_items > 0),
    parent_batch_id uuid REFERENCES import_batches (id) ON DELETE SET NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    completed_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- The items a run has in flight, recorded on the batch instead of on every item: before a
    -- chunk, a run commits the chunk's range of item indexes here; a chunk is a run of consecutive
    -- pending items, so the items in flight are exactly the batch's pending items in that range.
    -- The chunk's transaction writes the outcomes (attempts + 1) and clears the range, so they
    -- commit together. A run that dies leaves the range, and its items pending: the next run finds
    -- them there, counts the interrupted attempt and retries them one at a time. The summary view
    -- and the item listings show the items in flight as 'processing'.
    in_flight_from  integer,
    in_flight_to    integer,
    -- Who created the batch: the REST API records the caller's user id (the token's user); a batch
    -- made by the CLI, Dagster or Python code without one has NULL. A reprocess batch takes its
    -- caller's id, or its original's. Endpoint hooks see it as ctx.user_id.
    created_by      text,
    CONSTRAINT import_batches_in_flight_check
        CHECK ((in_flight_from IS NULL) = (in_flight_to IS NULL) AND in_flight_from <= in_flight_to)
);
CREATE INDEX import_batches_status_created_idx ON import_batches (status, created_at DESC);
CREATE INDEX import_batches_type_created_idx ON import_batches (batch_type, created_at DESC);
CREATE INDEX import_batches_created_idx ON import_batches (created_at DESC);
CREATE INDEX import_batches_parent_idx ON import_batches (parent_batch_id) WHERE parent_batch_id IS NOT NULL;
CREATE INDEX import_batches_created_by_idx ON import_batches (created_by, created_at DESC)
    WHERE created_by IS NOT NULL;

-- batch_id names a batch, checked per statement by triggers below instead of a foreign key.
CREATE TABLE import_batch_items (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id        uuid NOT NULL,
    item_index      integer NOT NULL CHECK (item_index >= 0),
    source_data     jsonb NOT NULL,
    -- What identifies this content for its batch type (by default a SHA-256 of the canonical JSON).
    item_key        text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'skipped')),
    -- How many runs marked this item 'processing'; a run killed mid-item leaves it counted.
    attempts        integer NOT NULL DEFAULT 0,
    error_code      text,
    error_message   text,
    error_traceback text,
    target_table    text,
    target_id       text,
    result          jsonb,
    -- Skipped items: the item that applied the same key first.
    duplicate_of    bigint REFERENCES import_batch_items (id) ON DELETE SET NULL,
    -- Reprocessed items: the item of the original batch they were copied from.
    source_item_id  bigint REFERENCES import_batch_items (id) ON DELETE SET NULL,
    duration_ms     double precision,
    processed_at    timestamptz,
    UNIQUE (batch_id, item_index)
) WITH (fillfactor = 60);
-- No index covers status or the other columns a run updates, and pages keep free space
-- (fillfactor): the status update per item is a HOT update that touches no index. Lookups by
-- batch and status use the (batch_id, item_index) index and filter.
CREATE INDEX import_batch_items_source_idx ON import_batch_items (source_item_id) WHERE source_item_id IS NOT NULL;

-- One row per (batch type, item key) that was applied: written in the same transaction as the
-- processor's writes, so a key here means the content is in the database exactly once. item_id
-- names an item, checked per statement by triggers below instead of a foreign key.
CREATE TABLE import_batch_item_keys (
    batch_type  text NOT NULL,
    item_key    text NOT NULL,
    item_id     bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_type, item_key)
);
CREATE INDEX import_batch_item_keys_item_idx ON import_batch_item_keys (item_id);

CREATE TABLE import_batch_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    uuid NOT NULL REFERENCES import_batches (id) ON DELETE CASCADE,
    item_id     bigint REFERENCES import_batch_items (id) ON DELETE CASCADE,
    level       text NOT NULL CHECK (level IN ('info', 'warning', 'error')),
    message     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_batch_logs_batch_idx ON import_batch_logs (batch_id, id);
CREATE INDEX import_batch_logs_item_idx ON import_batch_logs (item_id) WHERE item_id IS NOT NULL;
CREATE INDEX import_batch_logs_errors_idx ON import_batch_logs (batch_id) WHERE level = 'error';

-- ---------------------------------------------------------------------------------------------
-- Two references checked per statement instead of per row. A foreign key checks every inserted
-- row with its own query and row lock (about 40% of the cost of create_batch's COPY of the items,
-- a third of writing the keys). The guarantees are kept, in bulk.

-- import_batch_item_keys.item_id: an INSERT or UPDATE of keys naming an item that does not exist is
-- refused (foreign_key_violation), and deleting or truncating items deletes their keys (what ON
-- DELETE CASCADE did). The framework writes a key in the same transaction that writes its item's
-- outcome (the item row is locked by that update until commit), so no concurrent delete can slip
-- between the check and the commit. The index on item_id serves those deletes.
CREATE FUNCTION import_batch_item_keys_check_items() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_missing bigint;
BEGIN
    SELECT n.item_id INTO v_missing FROM new_keys n
    WHERE NOT EXISTS (SELECT 1 FROM import_batch_items i WHERE i.id = n.item_id) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert or update on table "import_batch_item_keys" names item %s, which does not exist',
                             v_missing),
            TABLE = 'import_batch_item_keys', COLUMN = 'item_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batch_item_keys_check_items_ins AFTER INSERT ON import_batch_item_keys
    REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT EXECUTE FUNCTION import_batch_item_keys_check_items();
CREATE TRIGGER import_batch_item_keys_check_items_upd AFTER UPDATE ON import_batch_item_keys
    REFERENCING NEW TABLE AS new_keys FOR EACH STATEMENT EXECUTE FUNCTION import_batch_item_keys_check_items();

CREATE FUNCTION import_batch_items_delete_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM import_batch_item_keys;
    ELSE
        DELETE FROM import_batch_item_keys WHERE item_id IN (SELECT id FROM gone_items);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batch_items_delete_keys AFTER DELETE ON import_batch_items
    REFERENCING OLD TABLE AS gone_items FOR EACH STATEMENT EXECUTE FUNCTION import_batch_items_delete_keys();
CREATE TRIGGER import_batch_items_truncate_keys AFTER TRUNCATE ON import_batch_items
    FOR EACH STATEMENT EXECUTE FUNCTION import_batch_items_delete_keys();

-- import_batch_items.batch_id: inserted items must name existing batches (checked once per
-- statement, the batches locked FOR KEY SHARE as the foreign key did, so a concurrent delete of the
-- batch waits for this transaction); changing an item's batch_id is checked too; deleting or
-- truncating batches deletes their items, and with them their keys (above) and log lines
-- (import_batch_logs' foreign keys).
CREATE FUNCTION import_batch_items_check_batches() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_batches uuid[];
    v_missing uuid;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        v_batches := ARRAY[NEW.batch_id];
    ELSE
        SELECT array_agg(DISTINCT batch_id) INTO v_batches FROM new_items;
    END IF;
    PERFORM 1 FROM import_batches WHERE id = ANY (v_batches) FOR KEY SHARE;
    SELECT b INTO v_missing FROM unnest(v_batches) AS b
    WHERE NOT EXISTS (SELECT 1 FROM import_batches p WHERE p.id = b) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert or update on table "import_batch_items" names batch %s, which does not exist',
                             v_missing),
            TABLE = 'import_batch_items', COLUMN = 'batch_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batch_items_check_batches AFTER INSERT ON import_batch_items
    REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION import_batch_items_check_batches();
-- A row trigger on the column: an UPDATE that does not set batch_id (every one the framework makes) skips it.
CREATE TRIGGER import_batch_items_check_batch_change AFTER UPDATE OF batch_id ON import_batch_items
    FOR EACH ROW EXECUTE FUNCTION import_batch_items_check_batches();

CREATE FUNCTION import_batches_delete_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM import_batch_items;
    ELSE
        DELETE FROM import_batch_items WHERE batch_id IN (SELECT id FROM gone_batches);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER import_batches_delete_items AFTER DELETE ON import_batches
    REFERENCING OLD TABLE AS gone_batches FOR EACH STATEMENT EXECUTE FUNCTION import_batches_delete_items();
CREATE TRIGGER import_batches_truncate_items AFTER TRUNCATE ON import_batches
    FOR EACH STATEMENT EXECUTE FUNCTION import_batches_delete_items();

-- ---------------------------------------------------------------------------------------------
-- Reports.

-- One row per batch with its item counts (the items in flight counted as processing), success
-- rate and throughput.
CREATE VIEW import_batch_summary AS
SELECT
    b.id AS batch_id,
    b.batch_type,
    b.status,
    b.parent_batch_id,
    b.total_items,
    coalesce(c.pending, 0) AS pending_items,
    coalesce(c.processing, 0) AS processing_items,
    coalesce(c.completed, 0) AS completed_items,
    coalesce(c.failed, 0) AS failed_items,
    coalesce(c.skipped, 0) AS skipped_items,
    round(100.0 * (coalesce(c.completed, 0) + coalesce(c.skipped, 0)) / b.total_items, 2) AS success_rate,
    extract(epoch FROM b.completed_at - b.started_at)::double precision AS duration_seconds,
    CASE WHEN b.completed_at > b.started_at
         THEN round(((coalesce(c.completed, 0) + coalesce(c.failed, 0) + coalesce(c.skipped, 0))
                     / extract(epoch FROM b.completed_at - b.started_at))::numeric, 1)
    END AS items_per_second,
    b.error_message,
    b.metadata,
    b.created_at,
    b.started_at,
    b.completed_at,
    b.created_by
FROM import_batches b
LEFT JOIN LATERAL (
    SELECT
        count(*) FILTER (WHERE i.status = 'pending'
                         AND NOT coalesce(i.item_index BETWEEN b.in_flight_from AND b.in_flight_to, false)) AS pending,
        count(*) FILTER (WHERE i.status = 'processing'
                         OR (i.status = 'pending' AND i.item_index BETWEEN b.in_flight_from AND b.in_flight_to))
            AS processing,
        count(*) FILTER (WHERE i.status = 'completed') AS completed,
        count(*) FILTER (WHERE i.status = 'failed') AS failed,
        count(*) FILTER (WHERE i.status = 'skipped') AS skipped
    FROM import_batch_items i
    WHERE i.batch_id = b.id
) c ON true;

-- One row per batch that needs attention: failed items, or a batch that failed as a whole.
-- unresolved_items: failed items whose content has not been applied since (by a reprocess batch).
CREATE VIEW failed_imports_report AS
SELECT
    b.id AS batch_id,
    b.batch_type,
    b.status,
    b.created_at,
    b.error_message AS batch_error,
    f.failed_items,
    f.unresolved_items,
    f.error_codes,
    f.last_error,
    r.reprocess_batch_ids
FROM import_batches b
CROSS JOIN LATERAL (
    SELECT
        count(*) AS failed_items,
        count(*) FILTER (WHERE NOT EXISTS (
            SELECT 1 FROM import_batch_item_keys k
            WHERE k.batch_type = b.batch_type AND k.item_key = i.item_key)) AS unresolved_items,
        array_remove(array_agg(DISTINCT i.error_code), NULL) AS error_codes,
        (array_agg(i.error_message ORDER BY i.processed_at DESC NULLS LAST))[1] AS last_error
    FROM import_batch_items i
    WHERE i.batch_id = b.id AND i.status = 'failed'
) f
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(c.id ORDER BY c.created_at), '{}') AS reprocess_batch_ids
    FROM import_batches c WHERE c.parent_batch_id = b.id
) r
WHERE b.status = 'failed' OR f.failed_items > 0;


-- =============================================================================================
-- 5. Signals: the signal store's PostgreSQL backend (musingly_pipeline.signals.postgres_store)
-- =============================================================================================

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
