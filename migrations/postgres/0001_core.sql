-- snapex metadata store, core schema (PostgreSQL). Keep in step with migrations/sqlite/0001_core.sql:
-- the same tables, columns and meanings; only types differ where the engines differ.
-- Timestamps are BIGINT milliseconds since the Unix epoch (UTC) and flags are BIGINT 0/1 on both
-- engines, so every query in src/store is the same text on SQLite and PostgreSQL.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX projects_org ON projects(org_id);

CREATE TABLE clusters (
    id            TEXT PRIMARY KEY,
    group_id      TEXT NOT NULL REFERENCES projects(id),
    name          TEXT NOT NULL,
    cluster_type  TEXT NOT NULL,
    replica_sets  TEXT NOT NULL,  -- JSON array of replica-set names, one per shard
    labels        TEXT NOT NULL,  -- JSON array of {key, value}
    created_at    BIGINT NOT NULL,
    UNIQUE (group_id, name)
);

CREATE TABLE access_roles (
    id             TEXT PRIMARY KEY,
    group_id       TEXT NOT NULL REFERENCES projects(id),
    provider       TEXT NOT NULL,
    settings       TEXT NOT NULL,  -- JSON of the non-secret settings (endpoint, region, fromEnvironment, ...)
    sealed_secret  TEXT,           -- the secret settings, encrypted (never plain text)
    created_at     BIGINT NOT NULL
);
CREATE INDEX access_roles_group ON access_roles(group_id);

CREATE TABLE snapshots (
    id                  TEXT PRIMARY KEY,
    group_id            TEXT NOT NULL REFERENCES projects(id),
    cluster_id          TEXT NOT NULL REFERENCES clusters(id),
    cluster_name        TEXT NOT NULL,
    status              TEXT NOT NULL,
    snapshot_type       TEXT NOT NULL,
    frequency_type      TEXT NOT NULL,
    description         TEXT,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT,
    storage_size_bytes  BIGINT NOT NULL,
    mongod_version      TEXT,
    parts               TEXT NOT NULL,  -- JSON array of {replicaSetName, url, storageSizeBytes, mongodVersion}
    do_not_delete       BIGINT NOT NULL DEFAULT 0,
    policy_item_id      TEXT,
    -- 0: the files belong to the user (imported); deleting the record never touches them
    owns_files          BIGINT NOT NULL DEFAULT 0,
    imported_at         BIGINT NOT NULL
);
CREATE INDEX snapshots_cluster ON snapshots(cluster_id, created_at);

CREATE TABLE export_buckets (
    id                          TEXT PRIMARY KEY,
    group_id                    TEXT NOT NULL REFERENCES projects(id),
    cloud_provider              TEXT NOT NULL,
    bucket_name                 TEXT NOT NULL,
    role_id                     TEXT,
    service_url                 TEXT,
    region                      TEXT,
    require_private_networking  BIGINT NOT NULL DEFAULT 0,
    created_at                  BIGINT NOT NULL
);
CREATE INDEX export_buckets_group ON export_buckets(group_id, created_at);

-- An export job, and one row per replica set in export_job_parts. The job row carries what the
-- API shows; the part rows are the unit a node claims and leases, so a sharded job can run its
-- shards on different nodes (issue 5) and the admission limit counts replica sets, not jobs.
CREATE TABLE export_jobs (
    id                    TEXT PRIMARY KEY,
    group_id              TEXT NOT NULL REFERENCES projects(id),
    cluster_id            TEXT NOT NULL,
    cluster_name          TEXT NOT NULL,
    snapshot_id           TEXT NOT NULL,
    export_bucket_id      TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    started_at            BIGINT,
    finished_at           BIGINT,
    custom_data           TEXT NOT NULL,  -- JSON array of {key, value}
    prefix                TEXT NOT NULL,
    state                 TEXT NOT NULL,  -- Queued | InProgress | Successful | Failed | Cancelled
    state_reason_code     TEXT,
    state_reason_message  TEXT,
    replica_set_count     BIGINT NOT NULL,
    cancel_requested      BIGINT NOT NULL DEFAULT 0,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX export_jobs_cluster ON export_jobs(group_id, cluster_name, created_at);
CREATE INDEX export_jobs_state ON export_jobs(state, created_at);
-- at most one active export per snapshot, enforced by the database so that two concurrent
-- creates (on two nodes) cannot both succeed
CREATE UNIQUE INDEX export_jobs_one_active ON export_jobs(snapshot_id)
    WHERE state IN ('Queued', 'InProgress');

CREATE TABLE export_job_parts (
    job_id                TEXT NOT NULL REFERENCES export_jobs(id),
    replica_set_name      TEXT NOT NULL,
    export_id             TEXT NOT NULL,
    position              BIGINT NOT NULL,
    state                 TEXT NOT NULL,  -- Queued | Admitted | Running | Done | Failed | Cancelled
    lease_owner           TEXT,
    lease_expires_at      BIGINT,
    heartbeat_at          BIGINT,
    exported_collections  BIGINT NOT NULL DEFAULT 0,
    total_collections     BIGINT NOT NULL DEFAULT 0,
    summary               TEXT,           -- JSON ReplicaSetSummary once Done
    error                 TEXT,
    PRIMARY KEY (job_id, replica_set_name)
);
CREATE INDEX export_job_parts_state ON export_job_parts(state, lease_expires_at);

CREATE TABLE backup_schedules (
    cluster_id    TEXT PRIMARY KEY REFERENCES clusters(id),
    group_id      TEXT NOT NULL,
    document      TEXT NOT NULL,  -- JSON of the schedule as stored (policies, export, flags)
    updated_at    BIGINT NOT NULL
);

-- One row that every claimer updates first inside its transaction: on PostgreSQL the row lock
-- serializes admission across nodes, on SQLite the write takes the database lock up front (a
-- deferred read-then-write transaction could fail with SQLITE_BUSY instead of waiting).
CREATE TABLE job_claim_lock (
    id      BIGINT PRIMARY KEY,
    claims  BIGINT NOT NULL
);
INSERT INTO job_claim_lock (id, claims) VALUES (1, 0);
