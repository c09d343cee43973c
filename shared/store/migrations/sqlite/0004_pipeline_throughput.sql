-- Same intent as the PostgreSQL migration of this number: no query filters events by status,
-- and the index cost every status change an index update. (SQLite cannot drop the redundant
-- issuer foreign keys of doses and credentials without rebuilding the tables, and its foreign
-- key checks take no locks, so they stay.)
DROP INDEX IF EXISTS events_status;
