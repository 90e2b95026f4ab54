-- The organization's name, from its created/updated events, for ListAccountOrganizations
-- (a person switching organizations sees names, not ids).
ALTER TABLE organization_policies ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
