-- SQLite's search index moves to a key it can find rows by (its 0003). PostgreSQL's is a
-- generated column with a GIN index on the row itself: nothing to change.
SELECT 1;
