-- Access tokens: the same columns as the SQLite store. Times are unix seconds (double precision)
-- so records round-trip exactly; only the secret's SHA-256 is stored.
CREATE TABLE tokens (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    subject     text NOT NULL,
    name        text,
    secret_hash text NOT NULL,
    created_at  double precision NOT NULL,
    expires_at  double precision,
    revoked_at  double precision
);
CREATE INDEX tokens_subject ON tokens (subject);
-- Every replica asks for recent revocations once a second.
CREATE INDEX tokens_revoked_at ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
