-- Push the due work of campaigns that cannot send now (window closed, daily limit reached, no
-- ready mailbox for unassigned prospects) to when they can, with the reason. Only ever later.
UPDATE sequences_enrollment e
SET next_action_at = v.until, wait_reason = v.reason, updated_at = %(now)s
FROM unnest(%(campaign_ids)s::uuid[], %(untils)s::timestamptz[], %(reasons)s::text[],
            %(unassigned_only)s::boolean[]) AS v(campaign_id, until, reason, unassigned_only)
WHERE e.campaign_id = v.campaign_id
  AND e.status = 'pending'
  AND e.next_action_at <= %(now)s
  AND v.until > e.next_action_at
  AND (NOT v.unassigned_only OR e.mailbox_id IS NULL)
