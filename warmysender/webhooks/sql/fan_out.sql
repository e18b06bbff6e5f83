-- Outbox → deliveries: one row per (event, matching active endpoint), then the events are marked.
-- SKIP LOCKED lets two workers fan out side by side without taking the same events; the unique
-- (endpoint, event) index makes a repeat a no-op even so.
WITH events AS (
    SELECT id, workspace_id, type
    FROM audit_domainevent
    WHERE webhooks_dispatched_at IS NULL
    ORDER BY occurred_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), inserted AS (
    INSERT INTO webhooks_webhookdelivery
        (id, workspace_id, endpoint_id, event_id, event_type, state, attempts, next_attempt_at,
         response_excerpt, error, created_at)
    SELECT gen_random_uuid(), e.workspace_id, w.id, e.id, e.type, 'pending', 0, %(now)s,
           '', '', %(now)s
    FROM events e
    JOIN webhooks_webhookendpoint w
      ON w.workspace_id = e.workspace_id
     AND w.active
     AND e.type = ANY(%(catalogue)s::varchar[])
     AND (e.type = ANY(w.events) OR '*' = ANY(w.events))
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING 1
), marked AS (
    UPDATE audit_domainevent d
    SET webhooks_dispatched_at = %(now)s
    FROM events e
    WHERE d.id = e.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM marked), (SELECT count(*) FROM inserted)
