-- Platform staff (Super Admin): set only by `complianceiq staff add`, never through the API.
ALTER TABLE accounts ADD COLUMN staff BIGINT NOT NULL DEFAULT 0 CHECK (staff IN (0, 1));
-- An organization suspended by staff: its members are refused until it is restored.
ALTER TABLE organization_policies ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1));
