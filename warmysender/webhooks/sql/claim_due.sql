-- Due deliveries of active endpoints, claimed for one worker until the lease expires. A row whose
-- worker died keeps its old lease, which lapses by itself: the row is then due again.
WITH due AS (
    SELECT d.id
    FROM webhooks_webhookdelivery d
    JOIN webhooks_webhookendpoint w ON w.id = d.endpoint_id
    WHERE d.state IN ('pending', 'retrying')
      AND d.next_attempt_at <= %(now)s
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= %(now)s)
      AND w.active
    ORDER BY d.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhooks_webhookdelivery d
SET lease_token = %(token)s, lease_expires_at = %(lease_until)s
FROM due
WHERE d.id = due.id
RETURNING d.id
