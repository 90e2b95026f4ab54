-- The risk appetite: the residual score above which a risk is high (dashboards, widgets,
-- reports); 50 for every organization until it sets its own.
ALTER TABLE organizations ADD COLUMN risk_appetite BIGINT NOT NULL DEFAULT 50;
