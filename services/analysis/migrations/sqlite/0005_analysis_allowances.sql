-- Each organization's monthly allowance of analyses, from subscription.changed: the plan's
-- limit (0: unlimited), the billing period, and the analyses started in it. A job takes one
-- with a conditional UPDATE in the transaction that creates it, so concurrent starts cannot
-- exceed it. plan is '' while no subscription event has arrived (the free plan's limit holds).
CREATE TABLE analysis_allowances (
    organization_id TEXT   PRIMARY KEY,
    plan            TEXT   NOT NULL,
    max_per_month   BIGINT NOT NULL,
    period_start    BIGINT NOT NULL,
    period_end      BIGINT NOT NULL,
    used            BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
