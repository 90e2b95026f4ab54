-- See the PostgreSQL migration for what each table holds.
-- Who can be notified: the organization's members as `user.authorization_changed` describes
-- them (email, permissions, whether still a member; `version` orders the updates).
CREATE TABLE notification_recipients (
    organization_id TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    permissions     TEXT    NOT NULL,
    active          BIGINT  NOT NULL,
    version         BIGINT  NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);

-- A person's settings; `topics` is JSON: [{"topic", "channels": [names], "min_severity"}].
CREATE TABLE notification_preferences (
    organization_id   TEXT   NOT NULL,
    user_id           TEXT   NOT NULL,
    email             TEXT   NOT NULL,
    phone_number      TEXT   NOT NULL,
    topics            TEXT   NOT NULL,
    quiet_hours_start TEXT   NOT NULL,
    quiet_hours_end   TEXT   NOT NULL,
    time_zone         TEXT   NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);

-- One notification to one person. `source` is what caused it (an event id, or a
-- SendNotification request), so a redelivered event notifies nobody twice. `in_app` (1 or 0):
-- whether it shows in the person's list (their preferences may send a topic by email only).
CREATE TABLE notifications (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    source          TEXT   NOT NULL,
    topic           TEXT   NOT NULL,
    severity        BIGINT NOT NULL,
    title           TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    link_uri        TEXT   NOT NULL,
    in_app          BIGINT NOT NULL,
    read_at         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, user_id, source)
);
CREATE INDEX notifications_by_user ON notifications (organization_id, user_id, id);

-- Its delivery on each channel: in-app is delivered when stored; email goes through the
-- `notification-email` job of the same id. `address` is where it goes, fixed when made.
CREATE TABLE notification_deliveries (
    organization_id TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    notification_id TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    address         TEXT   NOT NULL,
    state           TEXT   NOT NULL,
    error           TEXT   NOT NULL,
    sent_at         BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id),
    UNIQUE (organization_id, notification_id, channel)
);

