-- Push the due work assigned to mailboxes that cannot send now (daily cap, pacer, backoff, not
-- connected) to when they can, with the reason. Only ever later.
UPDATE sequences_enrollment e
SET next_action_at = v.until, wait_reason = v.reason, updated_at = %(now)s
FROM unnest(%(mailbox_ids)s::uuid[], %(untils)s::timestamptz[], %(reasons)s::text[])
     AS v(mailbox_id, until, reason)
WHERE e.mailbox_id = v.mailbox_id
  AND e.status = 'pending'
  AND e.next_action_at <= %(now)s
  AND v.until > e.next_action_at
  AND e.campaign_id IN (SELECT unnest(%(open_campaigns)s::uuid[]))
