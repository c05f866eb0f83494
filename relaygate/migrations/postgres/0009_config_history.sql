-- Applied config revisions (`relaygate apply`, POST /api/admin/v1/config/apply): one row per commit,
-- written in the same transaction as the manifests and the revision bump. `applied_by` is "cli" or
-- the admin subject; `summary` lists the changed manifests (names only, never bodies or values).
CREATE TABLE config_history (
    revision   bigint PRIMARY KEY,
    applied_at double precision NOT NULL,
    applied_by text NOT NULL,
    summary    text NOT NULL
);
