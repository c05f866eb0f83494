-- The admin API's log pages (GET /logs): newest first by ("time", id) under every filter, so the
-- first page stays an index range scan at 10 M rows. ("time", id) and (subject, "time") exist
-- (0002); an ordinary user's own rows also match on their teams, and the token filter is common.
CREATE INDEX request_logs_team_time ON request_logs (team, "time");
CREATE INDEX request_logs_token_time ON request_logs (token_id, "time");
