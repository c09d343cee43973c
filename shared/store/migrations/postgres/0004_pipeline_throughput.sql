-- Write costs on the event pipeline's hot tables (BENCHMARKS.md, "Pipeline end to end").
--
-- doses.issuer_id and credentials.issuer_id repeat their patient's issuer (they are part of the
-- tables' unique keys); the patient's own foreign key to issuers guards the value. Checking
-- the same single issuers row again for every dose and card takes a KEY SHARE lock on it from
-- every concurrent transaction (multixacts on one hot row) and cost ~5 µs per row alone.
ALTER TABLE doses DROP CONSTRAINT IF EXISTS doses_issuer_id_fkey;
ALTER TABLE credentials DROP CONSTRAINT IF EXISTS credentials_issuer_id_fkey;

-- No query filters events by status (the per-status count reads the whole table either way),
-- and the index made every status change (received → processed) a non-HOT update with three
-- index insertions. With room left on each page, that update now stays on its page.
DROP INDEX IF EXISTS events_status;
ALTER TABLE events SET (fillfactor = 80);
-- Outbox rows are updated twice (claimed, sent) right after their insert.
ALTER TABLE outbox SET (fillfactor = 70);
