-- Sends the server accepted, recorded together: each action `sent`, the mailbox's last send,
-- each prospect's next step, the `email.sent` events and the audit rows — one statement for a
-- batch, the arrays in the order of the sends.
--
-- Durability: this commit need not wait for the disk. Each action's `sending` marker was
-- committed synchronously before its hand-over (sql/mark_sending.sql); were this commit lost in
-- a database crash, or the sender killed before it ran, the actions would read `sending` again
-- and the watchdog would make them `unknown` — a lost outcome can never cause a second send.
-- A prospect stopped meanwhile (a reply, an unsubscribe) stays stopped; the event and the audit
-- row follow the send even when the watchdog got to the action first.
WITH durability AS (
  SELECT set_config('synchronous_commit', 'off', true)
), d AS MATERIALIZED (
  SELECT *
  FROM unnest(%(action_ids)s::uuid[], %(workspace_ids)s::uuid[], %(enrollment_ids)s::uuid[],
              %(ats)s::timestamptz[], %(codes)s::int[], %(message_ids)s::text[],
              %(subjects)s::text[], %(statuses)s::text[], %(next_step_indexes)s::int[],
              %(next_action_ats)s::timestamptz[], %(wait_reasons)s::text[],
              %(finished_ats)s::timestamptz[], %(data)s::jsonb[], %(completed_data)s::jsonb[])
       WITH ORDINALITY
       AS d(action_id, workspace_id, enrollment_id, at, code, message_id, subject, status,
            next_step_index, next_action_at, wait_reason, finished_at, data, completed_data, n)
  WHERE EXISTS (SELECT 1 FROM durability)
), sent AS (
  UPDATE sequences_action a SET state = 'sent', finished_at = d.at, smtp_code = d.code
  FROM d
  WHERE a.id = d.action_id AND a.state = 'sending'
  RETURNING 1
), paced AS (
  UPDATE sequences_mailboxthrottle SET last_sent_at = %(last_at)s
  WHERE mailbox_id = %(mailbox_id)s AND backoff_level = 0 AND EXISTS (SELECT 1 FROM sent)
  RETURNING 1
), moved AS (
  UPDATE sequences_enrollment e
  SET status = d.status, next_step_index = d.next_step_index,
      next_action_at = d.next_action_at, wait_reason = d.wait_reason,
      finished_at = d.finished_at, last_message_id = d.message_id,
      thread_subject = coalesce(nullif(e.thread_subject, ''), d.subject),
      last_sent_at = d.at, recovery_count = 0, updated_at = d.at
  FROM d
  WHERE e.id = d.enrollment_id AND e.status IN ('sending', 'needs_review')
  RETURNING e.id
), event AS (
  INSERT INTO audit_domainevent (id, workspace_id, type, occurred_at, data, dedup_key)
  SELECT gen_random_uuid(), d.workspace_id, 'email.sent', d.at, d.data,
         'email.sent:' || d.action_id::text
  FROM d
  ORDER BY d.n
  ON CONFLICT (workspace_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
  RETURNING 1
), audit AS (
  INSERT INTO audit_auditentry (workspace_id, created_at, actor_user_id, actor_label, action,
                                object_type, object_id, from_state, to_state, reason, data)
  SELECT workspace_id, at, NULL, %(actor)s, action, object_type, object_id, from_state,
         to_state, reason, data
  FROM (
    SELECT d.n, 1 AS k, d.workspace_id, d.at, 'action.sent' AS action, 'action' AS object_type,
           d.action_id::text AS object_id, 'sending' AS from_state, 'sent' AS to_state,
           '' AS reason, d.data
    FROM d
    UNION ALL
    SELECT d.n, 2, d.workspace_id, d.at, 'enrollment.status_changed', 'enrollment',
           d.enrollment_id::text, 'sending', 'completed', 'sequence finished', d.completed_data
    FROM d
    WHERE d.status = 'completed' AND d.enrollment_id IN (SELECT id FROM moved)
  ) rows
  ORDER BY n, k
  RETURNING 1
)
SELECT (SELECT count(*) FROM sent), (SELECT count(*) FROM paced), (SELECT count(*) FROM moved),
       (SELECT count(*) FROM event), (SELECT count(*) FROM audit)
