-- The scheduler's claim, step 1 (no locks): due enrollments of open campaigns whose sender can
-- send now, oldest first, and the ready mailboxes of each campaign. Work that waits long on its
-- senders was pushed later before this runs (defer_blocked_senders.sql) and work waiting
-- minutes for a paced mailbox is filtered here, so neither fills the LIMIT and starves the
-- others. Two kinds of rows come back (the caller locks the chosen ones with lock_claimed.sql):
--   'slot': a campaign, how many of its mailboxes are ready, and those, least recently used first
--   'due':  a chosen enrollment: one new send per ready mailbox — the first due row of an
--           assigned mailbox, and as many unassigned rows of a campaign as it has ready
--           mailboxes — oldest first, at most %(limit)s
WITH senders AS (
%(sender_state)s
), ready AS (
  SELECT campaign_id, mailbox_id, last_assigned_at FROM senders WHERE until IS NULL
), slots AS (
  SELECT campaign_id, count(*) AS n,
         array_agg(mailbox_id ORDER BY last_assigned_at NULLS FIRST, mailbox_id) AS mailboxes
  FROM ready GROUP BY campaign_id
), scan AS (
  SELECT e.id, e.campaign_id, e.mailbox_id, e.next_action_at
  FROM sequences_enrollment e
  WHERE e.status = 'pending'
    AND e.next_action_at <= %(now)s
    -- One OR of two lookups (the ready pairs include their campaign): the planner keeps both
    -- as hashed subplans and walks the due index in order, instead of looping over campaigns.
    AND ((e.mailbox_id IS NULL AND e.campaign_id IN (SELECT campaign_id FROM slots))
         OR (e.campaign_id, e.mailbox_id) IN (SELECT campaign_id, mailbox_id FROM ready))
  ORDER BY e.next_action_at
  LIMIT %(scan_limit)s
), ranked AS (
  SELECT id, campaign_id, mailbox_id, next_action_at,
         row_number() OVER (PARTITION BY coalesce(mailbox_id, campaign_id)
                            ORDER BY next_action_at, id) AS rank
  FROM scan
), ready_per_campaign AS (
  -- One row, a lookup from campaign to its number of ready mailboxes. (Joining `slots` row by
  -- row would be planned as a nested loop: the planner cannot tell how many slots there are.)
  SELECT coalesce(jsonb_object_agg(campaign_id::text, n), '{}') AS n FROM slots
), chosen AS (
  SELECT r.id
  FROM ranked r CROSS JOIN ready_per_campaign c
  WHERE (r.mailbox_id IS NOT NULL AND r.rank = 1)
     OR (r.mailbox_id IS NULL AND r.rank <= (c.n ->> r.campaign_id::text)::int)
  ORDER BY r.next_action_at
  LIMIT %(limit)s
)
SELECT 'slot' AS kind, campaign_id::text, n AS ready, mailboxes::text[] AS mailboxes
FROM slots
UNION ALL
SELECT 'due', id::text, NULL, NULL
FROM chosen
