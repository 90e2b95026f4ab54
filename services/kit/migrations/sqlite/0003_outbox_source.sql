-- The module that wrote each event: the relay of a process publishes only its own modules'
-- events, under a subject only that module may publish to. Rows written before this column
-- existed have '' and are published by any relay (their envelope names the module).
ALTER TABLE ciq_outbox ADD COLUMN source TEXT NOT NULL DEFAULT '';
