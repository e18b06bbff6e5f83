-- A send went through: the action, the mailbox's last send, the prospect's next step, the
-- `email.sent` event and the audit rows — and, when another message is ready, that message's
-- `sending` marker — in one statement, one round trip. With %(action_id)s NULL it is only the
-- marker (the first message of a run).
--
-- The marker is committed right before the SMTP transaction, and only if the send is still
-- wanted: the action still reserved, its campaign running, its prospect still in the sequence,
-- the mailbox connected and enabled, the address not suppressed — all read here, at the last
-- moment. When it comes back 0 the caller looks at why.
--
-- Durability: only a `sending` marker must reach the disk before its hand-over. When this
-- statement carries one (%(next_id)s set) it commits synchronously; otherwise it need not wait:
-- were the outcome's commit lost in a database crash, the action would read `sending` again and
-- the watchdog would make it `unknown` — a lost outcome can never cause a second send.
-- A prospect stopped meanwhile (a reply, an unsubscribe) stays stopped.
WITH durability AS (
  SELECT set_config('synchronous_commit',
                    CASE WHEN %(next_id)s::uuid IS NULL THEN 'off' ELSE 'on' END, true)
), sent AS (
  UPDATE sequences_action SET state = 'sent', finished_at = %(now)s, smtp_code = %(code)s
  WHERE id = %(action_id)s::uuid AND state = 'sending'
  RETURNING 1
), recorded AS (
  -- The event and the audit row follow the send, even when the watchdog got to the action first.
  SELECT %(workspace_id)s::uuid AS workspace_id WHERE %(action_id)s::uuid IS NOT NULL
), paced AS (
  UPDATE sequences_mailboxthrottle SET last_sent_at = %(now)s
  WHERE mailbox_id = %(mailbox_id)s AND backoff_level = 0 AND EXISTS (SELECT 1 FROM sent)
  RETURNING 1
), moved AS (
  UPDATE sequences_enrollment
  SET status = %(status)s, next_step_index = %(next_step_index)s,
      next_action_at = %(next_action_at)s, wait_reason = %(wait_reason)s,
      finished_at = %(finished_at)s, last_message_id = %(message_id)s,
      thread_subject = coalesce(nullif(thread_subject, ''), %(subject)s),
      last_sent_at = %(now)s, recovery_count = 0, updated_at = %(now)s
  WHERE id = %(enrollment_id)s::uuid AND status IN ('sending', 'needs_review')
  RETURNING 1
), event AS (
  INSERT INTO audit_domainevent (id, workspace_id, type, occurred_at, data, dedup_key)
  SELECT gen_random_uuid(), workspace_id, 'email.sent', %(now)s, %(data)s::jsonb,
         'email.sent:' || %(action_id)s::text
  FROM recorded
  ON CONFLICT (workspace_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
  RETURNING 1
), audit_sent AS (
  INSERT INTO audit_auditentry (workspace_id, created_at, actor_user_id, actor_label, action,
                                object_type, object_id, from_state, to_state, reason, data)
  SELECT workspace_id, %(now)s, NULL, %(actor)s, 'action.sent', 'action',
         %(action_id)s::text, 'sending', 'sent', '', %(data)s::jsonb
  FROM recorded
  RETURNING 1
), audit_completed AS (
  INSERT INTO audit_auditentry (workspace_id, created_at, actor_user_id, actor_label, action,
                                object_type, object_id, from_state, to_state, reason, data)
  SELECT workspace_id, %(now)s, NULL, %(actor)s, 'enrollment.status_changed', 'enrollment',
         %(enrollment_id)s::text, 'sending', 'completed', 'sequence finished',
         %(completed_data)s::jsonb
  FROM recorded
  WHERE %(status)s = 'completed' AND EXISTS (SELECT 1 FROM moved)
  RETURNING 1
), marked AS (
  UPDATE sequences_action a
  SET state = 'sending', sending_at = %(now)s, message_id = %(next_message_id)s,
      subject = %(next_subject)s
  WHERE a.id = %(next_id)s::uuid
    AND a.state = 'reserved'
    AND EXISTS (SELECT 1 FROM sequences_campaign c
                WHERE c.id = a.campaign_id AND c.status = 'running')
    AND EXISTS (SELECT 1 FROM sequences_enrollment e
                WHERE e.id = a.enrollment_id AND e.status = 'sending')
    AND EXISTS (SELECT 1 FROM mailboxes_mailbox m
                WHERE m.id = a.mailbox_id AND m.status = 'connected' AND m.sending_enabled)
    AND NOT EXISTS (SELECT 1 FROM prospects_suppression s
                    WHERE s.workspace_id = a.workspace_id
                      AND ((s.kind = 'email' AND s.value = lower(a.to_email))
                           OR (s.kind = 'domain'
                               AND s.value = lower(split_part(a.to_email, '@', 2)))))
  RETURNING 1
)
SELECT (SELECT count(*) FROM durability), (SELECT count(*) FROM sent),
       (SELECT count(*) FROM paced), (SELECT count(*) FROM moved),
       (SELECT count(*) FROM event), (SELECT count(*) FROM audit_sent),
       (SELECT count(*) FROM audit_completed), (SELECT count(*) FROM marked)
