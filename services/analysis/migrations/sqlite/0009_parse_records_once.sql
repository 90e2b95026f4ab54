-- PostgreSQL's version views now parse a record's JSON once per row. SQLite's need no
-- change: json_extract reuses a recent parse of the same text (its JSON parse cache), so
-- reading several columns of one record parses it once already.
SELECT 1;
