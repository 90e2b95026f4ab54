-- A job's results are stored in pages of consecutive positions, one row per page, instead of
-- one row per result (see the PostgreSQL migration). A page is an encoded `ResultPage`.
CREATE TABLE analysis_result_pages (
    organization_id TEXT   NOT NULL,
    job_id          TEXT   NOT NULL,
    first_position  BIGINT NOT NULL,
    results         BLOB   NOT NULL,
    PRIMARY KEY (organization_id, job_id, first_position)
);

-- Each stored result becomes a page of one: field 1 (tag 0x0A), its length as a varint
-- (three bytes reach 2 MiB), the result; built in hex, as SQLite's || makes text of blobs.
INSERT INTO analysis_result_pages (organization_id, job_id, first_position, results)
SELECT organization_id, job_id, position,
       unhex('0A' || CASE
           WHEN length(result) < 128 THEN printf('%02X', length(result))
           WHEN length(result) < 16384 THEN printf('%02X%02X', (length(result) & 127) | 128, length(result) >> 7)
           ELSE printf('%02X%02X%02X', (length(result) & 127) | 128, ((length(result) >> 7) & 127) | 128,
                       length(result) >> 14)
       END || hex(result))
FROM analysis_results;

DROP TABLE analysis_results;
