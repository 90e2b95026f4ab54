-- A job's results are stored in pages of consecutive positions, one row per page, instead of
-- one row per result: a control analysis of a 100k-record instance writes ~10k results, and
-- a row (and its bound parameters) each made writing them a fifth of the job. A page is an
-- encoded `ResultPage` (the results as field 1, repeated), so the results stay byte for byte
-- what they were. Pages are written once and read whole: stored uncompressed.
CREATE TABLE analysis_result_pages (
    organization_id TEXT   NOT NULL,
    job_id          TEXT   NOT NULL,
    first_position  BIGINT NOT NULL,
    results         BYTEA  NOT NULL,
    PRIMARY KEY (organization_id, job_id, first_position)
);
ALTER TABLE analysis_result_pages ALTER COLUMN results SET STORAGE EXTERNAL;

SELECT ciq_enable_tenant_isolation('analysis_result_pages');

-- Each stored result becomes a page of one: field 1 (tag 0x0A), its length as a varint
-- (three bytes reach 2 MiB; a result is a few hundred bytes), the result. The migration
-- runs as the admin user, which row-level security does not restrict (a superuser).
INSERT INTO analysis_result_pages (organization_id, job_id, first_position, results)
SELECT organization_id, job_id, position,
       '\x0a'::bytea || CASE
           WHEN length(result) < 128 THEN set_byte('\x00'::bytea, 0, length(result))
           WHEN length(result) < 16384 THEN
               set_byte(set_byte('\x0000'::bytea, 0, (length(result) & 127) | 128), 1, length(result) >> 7)
           ELSE set_byte(set_byte(set_byte('\x000000'::bytea, 0, (length(result) & 127) | 128),
                                  1, ((length(result) >> 7) & 127) | 128), 2, length(result) >> 14)
       END || result
FROM analysis_results;

DROP TABLE analysis_results;
