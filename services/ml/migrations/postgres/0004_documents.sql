-- Regulations uploaded for ScanRegulation (CreateDocumentUpload): the file lives in object
-- storage under documents/<organization>/<id>; the row and the file are purged once
-- expires_at has passed.
CREATE TABLE ml_documents (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    file_name       TEXT   NOT NULL,
    content_type    TEXT   NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX ml_documents_expiry ON ml_documents (organization_id, expires_at);

SELECT ciq_enable_tenant_isolation('ml_documents');
