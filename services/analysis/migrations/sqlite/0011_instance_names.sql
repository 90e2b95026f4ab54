-- The instance's name in ComplianceIQ, carried by each sync's ingest header, so dashboards
-- and reports name an instance as its people do (not by its URL's host).
ALTER TABLE grc_instances ADD COLUMN name TEXT NOT NULL DEFAULT '';
