-- The scheduler's claim: due enrollments of open campaigns whose sender can send now, oldest
-- first. Work that cannot go for long (cap, window, broken mailbox) was pushed later *before*
-- this runs (defer_*.sql), and work waiting a few minutes for a paced mailbox is filtered here,
-- so neither fills the LIMIT and starves the others. Each ready mailbox takes one new send per
-- tick, so the candidates are cut to one per assigned mailbox and, for prospects without one,
-- to as many as their campaign has ready mailboxes. SKIP LOCKED lets a reply or a person's
-- action that holds a row go on without waiting for the tick, and the reverse.
WITH scan AS (
  SELECT e.id, e.campaign_id, e.mailbox_id, e.next_action_at
  FROM sequences_enrollment e
  WHERE e.status = 'pending'
    AND e.next_action_at <= %(now)s
    -- IN (SELECT unnest(...)) rather than = ANY(...): the sets hold thousands of ids, and a
    -- hashed subplan looks each row up once instead of walking the array.
    AND e.campaign_id IN (SELECT unnest(%(open_campaigns)s::uuid[]))
    AND (e.mailbox_id IN (SELECT unnest(%(ready_mailboxes)s::uuid[]))
         OR (e.mailbox_id IS NULL
             AND e.campaign_id IN (SELECT unnest(%(campaigns_with_ready)s::uuid[]))))
  ORDER BY e.next_action_at
  LIMIT %(scan_limit)s
), ranked AS (
  SELECT s.*, row_number() OVER (PARTITION BY coalesce(s.mailbox_id, s.campaign_id)
                                 ORDER BY s.next_action_at, s.id) AS rn
  FROM scan s
), chosen AS (
  SELECT r.id
  FROM ranked r
  LEFT JOIN unnest(%(campaigns_with_ready)s::uuid[], %(ready_counts)s::int[])
       AS slots(campaign_id, n) ON r.mailbox_id IS NULL AND slots.campaign_id = r.campaign_id
  WHERE (r.mailbox_id IS NOT NULL AND r.rn = 1) OR (r.mailbox_id IS NULL AND r.rn <= slots.n)
  ORDER BY r.next_action_at
  LIMIT %(limit)s
)
SELECT e.id, e.campaign_id, e.mailbox_id, e.next_step_index,
       lower(split_part(p.email, '@', 2)) AS domain, e.next_action_at
FROM sequences_enrollment e
JOIN prospects_prospect p ON p.id = e.prospect_id
WHERE e.id IN (SELECT id FROM chosen)
  AND e.status = 'pending'
  AND e.next_action_at <= %(now)s
ORDER BY e.next_action_at
FOR UPDATE OF e SKIP LOCKED
