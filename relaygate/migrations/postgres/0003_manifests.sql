-- Config held in the database (`relaygate apply`): one row per manifest, its YAML as written
-- (secret references unresolved: each replica resolves them from its own environment).
CREATE TABLE manifests (
    type       text NOT NULL,
    name       text NOT NULL,
    body       text NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (type, name)
);
-- One row: bumped by every apply, so replicas poll a single integer to see a change.
CREATE TABLE config_revision (
    id         integer PRIMARY KEY CHECK (id = 1),
    revision   bigint NOT NULL,
    updated_at double precision NOT NULL
);
INSERT INTO config_revision (id, revision, updated_at) VALUES (1, 0, 0);
