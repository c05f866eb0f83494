-- The caller's first team by name, for usage by team and a team's own rows (admin API).
ALTER TABLE request_logs ADD COLUMN team text;
