-- The scheduler's claim: due enrollments of open campaigns whose sender can send now, oldest
-- first. Work that waits long on its senders was pushed later before this runs
-- (defer_blocked_senders.sql) and work waiting minutes for a paced mailbox is filtered here, so
-- neither fills the LIMIT and starves the others. Each ready mailbox takes one new send per
-- tick, so candidates are cut to one per assigned mailbox and, for prospects without one, to as
-- many as their campaign has ready mailboxes; those come back least recently used first.
-- SKIP LOCKED lets a reply or a person's action that holds a row go on without waiting.
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
    AND e.campaign_id IN (SELECT campaign_id FROM slots)
    AND (e.mailbox_id IS NULL
         OR (e.campaign_id, e.mailbox_id) IN (SELECT campaign_id, mailbox_id FROM ready))
  ORDER BY e.next_action_at
  LIMIT %(scan_limit)s
), ranked AS (
  SELECT s.*, row_number() OVER (PARTITION BY coalesce(s.mailbox_id, s.campaign_id)
                                 ORDER BY s.next_action_at, s.id) AS rn
  FROM scan s
), chosen AS (
  SELECT r.id, r.rn
  FROM ranked r JOIN slots ON slots.campaign_id = r.campaign_id
  WHERE (r.mailbox_id IS NOT NULL AND r.rn = 1) OR (r.mailbox_id IS NULL AND r.rn <= slots.n)
  ORDER BY r.next_action_at
  LIMIT %(limit)s
), locked AS (
  SELECT e.id, e.campaign_id, e.mailbox_id, e.next_step_index, e.prospect_id, e.next_action_at
  FROM sequences_enrollment e
  WHERE e.id IN (SELECT id FROM chosen) AND e.status = 'pending' AND e.next_action_at <= %(now)s
  FOR UPDATE OF e SKIP LOCKED
)
SELECT l.id, l.campaign_id, l.mailbox_id, l.next_step_index,
       lower(split_part(p.email, '@', 2)) AS domain, l.next_action_at,
       CASE WHEN l.mailbox_id IS NULL THEN slots.mailboxes END AS candidates
FROM locked l
JOIN prospects_prospect p ON p.id = l.prospect_id
JOIN slots ON slots.campaign_id = l.campaign_id
ORDER BY l.next_action_at
