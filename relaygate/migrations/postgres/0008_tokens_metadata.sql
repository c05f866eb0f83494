-- Free-form labels on a token (admin API `POST /tokens` `metadata`), kept across rotation; and the
-- admin API's token pages, newest first by (created_at, id).
ALTER TABLE tokens ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX tokens_created ON tokens (created_at, id);
