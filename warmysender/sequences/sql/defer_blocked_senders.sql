-- Push due work that waits on its senders for a long time (a cap until the mailbox's midnight,
-- a broken or switched-off mailbox, a long backoff) to when they can send, with the reason:
-- work assigned to such a mailbox, and unassigned work of campaigns none of whose mailboxes can
-- send soon. Short waits (the pacer) are left to the claim's filter. Only ever later.
WITH senders AS (
%(sender_state)s
), long_blocked AS (
  SELECT campaign_id, mailbox_id, until, reason FROM senders WHERE until > %(horizon)s
), campaign_blocked AS (
  -- Campaigns none of whose mailboxes can send soon: their unassigned work waits for the
  -- earliest of them.
  SELECT campaign_id, min(until) AS until, (array_agg(reason ORDER BY until))[1] AS reason
  FROM senders
  GROUP BY campaign_id
  HAVING NOT bool_or(until IS NULL OR until <= %(horizon)s)
), assigned AS (
  UPDATE sequences_enrollment e
  SET next_action_at = b.until, wait_reason = b.reason, updated_at = %(now)s
  FROM long_blocked b
  WHERE e.campaign_id = b.campaign_id AND e.mailbox_id = b.mailbox_id
    AND e.status = 'pending' AND e.next_action_at <= %(now)s
  RETURNING 1
), unassigned AS (
  UPDATE sequences_enrollment e
  SET next_action_at = b.until, wait_reason = b.reason, updated_at = %(now)s
  FROM campaign_blocked b
  WHERE e.campaign_id = b.campaign_id AND e.mailbox_id IS NULL AND e.status = 'pending'
    AND e.next_action_at <= %(now)s
  RETURNING 1
)
SELECT (SELECT count(*) FROM assigned) + (SELECT count(*) FROM unassigned)
