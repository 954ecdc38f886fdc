-- The audit log (issue 17 item 5): one row per admin action that succeeded, written in the same
-- transaction as the action, so an action that rolls back leaves no row and no row claims an action
-- that did not happen. Shared by every service (`service` names the writer); rows are never updated
-- or deleted by the services. `details` is a small JSON object and never holds a secret.
CREATE SCHEMA IF NOT EXISTS platform;

CREATE TABLE platform.audit_log (
    id uuid PRIMARY KEY,
    service text NOT NULL CHECK (service <> ''),
    -- `X-Operator` when given, else `admin` (HTTP) or the `--operator` of a command.
    operator text NOT NULL CHECK (char_length(operator) BETWEEN 1 AND 200),
    occurred_at timestamptz NOT NULL,
    -- The request's correlation id (`X-Request-Id`); NULL for a command.
    request_id text,
    -- `POST /v1/endpoints/{id}/pause`, or `cli: dlq replay`.
    route text NOT NULL,
    action text NOT NULL,
    target_id text,
    outcome text NOT NULL,
    -- The HTTP status answered; NULL for a command.
    http_status integer CHECK (http_status BETWEEN 100 AND 599),
    details jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object')
);

-- Newest first per service (the listing's default filter and cursor order), and the other filters.
CREATE INDEX audit_log_by_service ON platform.audit_log (service, occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_time ON platform.audit_log (occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_operator ON platform.audit_log (operator, occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_action ON platform.audit_log (action, occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_target ON platform.audit_log (target_id, occurred_at DESC, id DESC) WHERE target_id IS NOT NULL;
