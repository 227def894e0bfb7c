-- Control centre: the log of operating-mode playbook actions a dispatcher applied
-- (its.playbook, its/app/control/playbook.py, /v1/control/playbook): who applied which
-- recommended action and when, with the mode and the action's expected effect as they
-- stood then. Times UTC; effects in their unit (`effect_unit`: s, probability...).
CREATE TABLE IF NOT EXISTS playbook_log (
    log_id              bigserial PRIMARY KEY,
    applied_at          timestamptz NOT NULL DEFAULT now(),
    actor               text NOT NULL,                 -- the dispatcher's user name
    action_id           text NOT NULL,                 -- stable per domain, kind and subject
    mode                text NOT NULL CHECK (mode IN ('incident', 'peak')),
    network_tti         real,                          -- ratio, when known
    domain              text NOT NULL,
    kind                text NOT NULL,
    subject             text NOT NULL,
    title               text NOT NULL,
    effect_metric       text NOT NULL,
    effect_unit         text NOT NULL,
    effect_without      float8,
    effect_with         float8,
    effect_text         text NOT NULL,
    details             jsonb NOT NULL DEFAULT '{}'::jsonb,
    note                text                           -- the dispatcher's optional note
);
CREATE INDEX IF NOT EXISTS playbook_log_time ON playbook_log (applied_at DESC);
CREATE INDEX IF NOT EXISTS playbook_log_action ON playbook_log (action_id, applied_at DESC);
