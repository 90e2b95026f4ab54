-- SQLite has no row-level security; tenant isolation there is the application filter every
-- store query applies through TenantTx. Nothing to create.
SELECT 1;
