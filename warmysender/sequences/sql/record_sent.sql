-- A send went through: the action, the mailbox's last send and the prospect's next step, in one
-- statement. The transaction need not wait for the disk: were its commit lost in a database
-- crash, the action would read `sending` again and the watchdog would make it `unknown` — a lost
-- outcome can never cause a second send. (The `sending` marker itself is always durable.)
-- A prospect stopped meanwhile (a reply, an unsubscribe) stays stopped.
WITH durability AS (
  SELECT set_config('synchronous_commit', 'off', true)
), sent AS (
  UPDATE sequences_action SET state = 'sent', finished_at = %(now)s, smtp_code = %(code)s
  WHERE id = %(action_id)s AND state = 'sending'
  RETURNING 1
), paced AS (
  UPDATE sequences_mailboxthrottle SET last_sent_at = %(now)s
  WHERE mailbox_id = %(mailbox_id)s AND backoff_level = 0
  RETURNING 1
), moved AS (
  UPDATE sequences_enrollment
  SET status = %(status)s, next_step_index = %(next_step_index)s,
      next_action_at = %(next_action_at)s, wait_reason = %(wait_reason)s,
      finished_at = %(finished_at)s, last_message_id = %(message_id)s,
      thread_subject = coalesce(nullif(thread_subject, ''), %(subject)s),
      last_sent_at = %(now)s, recovery_count = 0, updated_at = %(now)s
  WHERE id = %(enrollment_id)s AND status IN ('sending', 'needs_review')
  RETURNING 1
)
SELECT (SELECT count(*) FROM durability), (SELECT count(*) FROM sent),
       (SELECT count(*) FROM paced), (SELECT count(*) FROM moved)
