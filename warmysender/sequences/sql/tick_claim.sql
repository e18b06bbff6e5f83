-- The scheduler tick's hot path, step 1: choose the due work that can go now. The rules are those
-- of the pure engine (engine.py, windows.py, caps.py), stated over sets:
--
--   * a campaign sends when it is open (running, inside its window, under its daily limit and its
--     plan's quota: the caller decides and passes them) and only as many as it has left today;
--   * a mailbox sends when it is active in the pool, connected, switched on, off its backoff and
--     pacer, under min(daily limit, hard cap) for its own local day, and under the pool entry's
--     maxSendsPerMailboxPerDay; it takes at most ONE new send per tick (the pacer spaces the
--     rest) and a recipient domain at most RECIPIENT_DOMAIN_DAILY_LIMIT a day;
--   * due work is taken oldest first: an assigned prospect through its own mailbox, an
--     unassigned one through the least recently used ready mailbox of its campaign.
--
-- Work that cannot go is filtered out before the LIMIT, so it never starves work that can; it
-- is pushed to when it can go (with the reason) by the deferrals that run before this statement
-- (defer_by_campaign.sql, defer_blocked_senders.sql), and a prospect whose recipient domain is
-- full for its mailbox is pushed by tick_reserve.sql, to that mailbox's midnight.
--
-- This statement (read-only, no locks) chooses; tick_reserve.sql locks what it chose and writes.
-- The choice comes back as one row of arrays, handed as they are to tick_reserve.sql. It joins
-- only small tables (campaigns, pools, mailboxes) and walks the due index once, so the caller
-- plans it with nested loops off: the row counts of CTEs are unknown to the planner, and a
-- nested loop over 10,000 pool rows it took for 7 costs more than the whole tick.
WITH campaigns AS (
  -- The open campaigns (running, inside their window, under their daily limit, their plan not
  -- exhausted), as the tick found them, with the sends each has left today.
  SELECT * FROM unnest(%(open_ids)s::uuid[], %(open_workspaces)s::uuid[],
                       %(open_rooms)s::int[], %(open_days)s::date[])
                AS c(id, workspace_id, room, day)
), senders AS (
%(sender_state)s
), ready AS MATERIALIZED (
  -- Every mailbox that can take a send now, per open campaign of its pool: judged as the
  -- deferral judges it.
  SELECT campaign_id, mailbox_id, email, workspace_id, zone, cap, day, used, last_assigned_at,
         pair_limited
  FROM senders WHERE until IS NULL
), ready_campaigns AS (
  SELECT DISTINCT campaign_id FROM ready
), scan AS MATERIALIZED (
  SELECT e.id, e.campaign_id, e.mailbox_id, e.next_action_at
  FROM sequences_enrollment e
  WHERE e.status = 'pending'
    AND e.next_action_at <= %(now)s
    -- One OR of two hashed lookups: the planner walks the due index in order instead of
    -- looping over campaigns.
    AND ((e.mailbox_id IS NULL AND e.campaign_id IN (SELECT campaign_id FROM ready_campaigns))
         OR (e.campaign_id, e.mailbox_id) IN (SELECT campaign_id, mailbox_id FROM ready))
  ORDER BY e.next_action_at
  LIMIT %(scan_limit)s
), assigned AS (
  -- The oldest due prospect of each ready mailbox that has prospects of its own.
  SELECT DISTINCT ON (s.mailbox_id) s.id, s.campaign_id, s.mailbox_id, s.next_action_at
  FROM scan s
  WHERE s.mailbox_id IS NOT NULL
  ORDER BY s.mailbox_id, s.next_action_at, s.id
), free AS (
  -- Each campaign's ready mailboxes for its unassigned prospects: first those no assigned
  -- prospect waits for, then the least recently used.
  SELECT r.campaign_id, r.mailbox_id,
         row_number() OVER (PARTITION BY r.campaign_id
                            ORDER BY a.id IS NOT NULL, r.last_assigned_at NULLS FIRST,
                                     r.mailbox_id) AS slot
  FROM ready r LEFT JOIN assigned a ON a.mailbox_id = r.mailbox_id
), unassigned AS (
  SELECT s.id, s.campaign_id, s.next_action_at,
         row_number() OVER (PARTITION BY s.campaign_id ORDER BY s.next_action_at, s.id) AS slot
  FROM scan s
  WHERE s.mailbox_id IS NULL
), offered AS (
  SELECT id, campaign_id, mailbox_id, next_action_at FROM assigned
  UNION ALL
  SELECT u.id, u.campaign_id, f.mailbox_id, u.next_action_at
  FROM unassigned u JOIN free f ON f.campaign_id = u.campaign_id AND f.slot = u.slot
), paired AS (
  -- One prospect per mailbox, the one due first: its own, or an unassigned one offered it (a
  -- mailbox shared by campaigns may be offered more than once).
  SELECT DISTINCT ON (mailbox_id) id, campaign_id, mailbox_id, next_action_at
  FROM offered
  ORDER BY mailbox_id, next_action_at, id
), capped AS (
  -- The campaigns' daily limits and the plans' quotas, oldest first.
  SELECT p.*, c.workspace_id, c.room, c.day AS campaign_day,
         row_number() OVER (PARTITION BY p.campaign_id ORDER BY p.next_action_at, p.id) AS nth,
         row_number() OVER (PARTITION BY c.workspace_id ORDER BY p.next_action_at, p.id) AS nth_ws
  FROM paired p JOIN campaigns c ON c.id = p.campaign_id
), chosen AS (
  SELECT c.*
  FROM capped c
  LEFT JOIN unnest(%(quota_workspaces)s::uuid[], %(quota_left)s::int[]) AS q(workspace_id, n)
         ON q.workspace_id = c.workspace_id
  WHERE c.nth <= c.room AND (q.n IS NULL OR c.nth_ws <= q.n)
  ORDER BY c.next_action_at
  LIMIT %(limit)s
)
SELECT coalesce(array_agg(c.id ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(c.campaign_id ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(c.mailbox_id ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(c.workspace_id ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(c.campaign_day ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(r.email ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(r.zone ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(r.day ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(r.used ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(r.cap ORDER BY c.next_action_at), '{}'),
       coalesce(array_agg(r.pair_limited ORDER BY c.next_action_at), '{}')
FROM chosen c JOIN ready r ON r.campaign_id = c.campaign_id AND r.mailbox_id = c.mailbox_id
