-- The scheduler's claim: due enrollments of open campaigns whose sender could send now, oldest
-- first. Work that cannot go now was pushed later *before* this runs (defer_*.sql), so a full or
-- paced mailbox never fills the LIMIT and starves the others. SKIP LOCKED lets a reply or a
-- person's action that holds a row go on without waiting for the tick, and the reverse.
SELECT e.id, e.campaign_id, e.mailbox_id, e.next_step_index,
       lower(split_part(p.email, '@', 2)) AS domain, e.next_action_at
FROM sequences_enrollment e
JOIN prospects_prospect p ON p.id = e.prospect_id
WHERE e.status = 'pending'
  AND e.next_action_at <= %(now)s
  AND e.campaign_id = ANY(%(open_campaigns)s::uuid[])
  AND (e.mailbox_id = ANY(%(ready_mailboxes)s::uuid[])
       OR (e.mailbox_id IS NULL AND e.campaign_id = ANY(%(campaigns_with_ready)s::uuid[])))
ORDER BY e.next_action_at
LIMIT %(limit)s
FOR UPDATE OF e SKIP LOCKED
