-- The scheduler's claim, step 2: lock the chosen enrollments. SKIP LOCKED lets a reply or a
-- person's action that holds a row go on without waiting for the tick, and the reverse; a row
-- that changed since step 1 simply drops out.
SELECT e.id::text, e.campaign_id::text, e.mailbox_id::text, e.next_step_index,
       lower(split_part(p.email, '@', 2)) AS domain, e.next_action_at, p.email
FROM sequences_enrollment e
JOIN prospects_prospect p ON p.id = e.prospect_id
WHERE e.id = ANY(%(ids)b::uuid[]) AND e.status = 'pending' AND e.next_action_at <= %(now)s
ORDER BY e.next_action_at
FOR UPDATE OF e SKIP LOCKED
