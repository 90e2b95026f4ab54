-- Each member's profile time zone (from user.authorization_changed): quiet hours and the
-- daily digest follow it where the notification preferences name no time zone.
ALTER TABLE notification_recipients ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';
