-- The scheduler tick's hot path, step 2: lock the enrollments tick_claim.sql chose and reserve
-- them, in one statement: the action (one per enrollment and step, ever), the enrollment moved to
-- `sending` with its mailbox and variant, the mailbox's slot (pacer, day count, recipient domain)
-- and the counters of the campaign, the pool entry and the plan. The choice arrives as the arrays
-- tick_claim.sql returned, whose sizes the planner sees.
--
-- Rows come back as (kind, enrollment, mailbox, campaign, step index, day count, cap, domain
-- count, domain):
--   'reserved' the action was reserved; the counts are the mailbox's after this reservation
--   'refused'  the step's action already exists beyond `planned`: never reserved again
--   'finished' the prospect has no step left to run
--   'waited'   the recipient domain is full on the mailbox today: pushed to its midnight
WITH chosen AS (
  SELECT *
  FROM unnest(%(ids)s::uuid[], %(campaign_ids)s::uuid[], %(mailbox_ids)s::uuid[],
              %(workspace_ids)s::uuid[], %(campaign_days)s::date[], %(from_emails)s::text[],
              %(zones)s::text[], %(days)s::date[], %(useds)s::int[], %(caps)s::int[],
              %(pair_limiteds)s::boolean[])
       AS v(id, campaign_id, mailbox_id, workspace_id, campaign_day, from_email, zone, day, used,
            cap, pair_limited)
), locked AS MATERIALIZED (
  -- SKIP LOCKED: a reply or a person holding a row goes on without waiting for the tick (and
  -- the reverse); a row that changed since the claim drops out.
  SELECT c.*, e.next_step_index, p.email, lower(split_part(p.email, '@', 2)) AS domain
  FROM chosen c
  JOIN sequences_enrollment e ON e.id = c.id
  JOIN prospects_prospect p ON p.id = e.prospect_id
  WHERE e.status = 'pending' AND e.next_action_at <= %(now)s
  FOR UPDATE OF e SKIP LOCKED
), judged AS MATERIALIZED (
  SELECT l.*,
         coalesce((t.domain_counts ->> l.domain)::int, 0) AS domain_used,
         s.id AS step_id, s.winner_variant_id,
         -- A uniform draw for the A/B variant (seeded per tick through setseed()).
         random() AS draw
  FROM locked l
  LEFT JOIN sequences_mailboxthrottle t ON t.mailbox_id = l.mailbox_id AND t.count_day = l.day
  LEFT JOIN sequences_step s ON s.campaign_id = l.campaign_id AND s.step_index = l.next_step_index
), variant_sets AS (
  -- Each step's variants with the upper end of its share of [0, 1): positive weights only, or
  -- all of them equally when none is positive.
  SELECT step_id, array_agg(id ORDER BY label, id) AS ids,
         array_agg(upto / total ORDER BY label, id) AS his
  FROM (
    SELECT step_id, id, label,
           sum(w) OVER (PARTITION BY step_id ORDER BY label, id)::float8 AS upto,
           sum(w) OVER (PARTITION BY step_id)::float8 AS total
    FROM (
      SELECT v.step_id, v.id, v.label,
             CASE WHEN bool_or(v.weight > 0) OVER (PARTITION BY v.step_id)
                  THEN v.weight ELSE 1 END AS w
      FROM sequences_variant v
      WHERE v.step_id IN (SELECT step_id FROM judged WHERE winner_variant_id IS NULL)
    ) weighted
    WHERE w > 0
  ) shares
  GROUP BY step_id
), granted AS MATERIALIZED (
  SELECT j.*,
         coalesce(j.winner_variant_id,
                  (SELECT x.id FROM unnest(vs.ids, vs.his) AS x(id, hi)
                   WHERE j.draw < x.hi ORDER BY x.hi LIMIT 1)) AS variant_id
  FROM judged j
  LEFT JOIN variant_sets vs ON vs.step_id = j.step_id
  WHERE j.step_id IS NOT NULL AND j.domain_used < %(domain_limit)s
), inserted AS (
  -- One action per (enrollment, step), ever. An action that exists as `planned` (handed back
  -- before it reached a server) is reserved again; any other is left alone and not returned,
  -- so a step can never be sent twice.
  INSERT INTO sequences_action AS a (id, workspace_id, enrollment_id, step_id, campaign_id,
      variant_id, mailbox_id, channel, state, from_email, to_email, message_id, subject,
      counters, recovery_count, error, created_at, reserved_at)
  SELECT gen_random_uuid(), g.workspace_id, g.id, g.step_id, g.campaign_id, g.variant_id,
         g.mailbox_id, 'email', 'reserved', g.from_email, g.email, '', '',
         jsonb_build_array(
           jsonb_build_array('mailbox', g.mailbox_id, g.day),
           jsonb_build_array('campaign', g.campaign_id, g.campaign_day),
           jsonb_build_array('recipient_domain', g.mailbox_id::text || ':' || g.domain, g.day))
         || CASE WHEN g.pair_limited THEN jsonb_build_array(jsonb_build_array(
              'campaign_mailbox', g.campaign_id::text || ':' || g.mailbox_id::text, g.day))
            ELSE '[]'::jsonb END
         || CASE WHEN g.workspace_id = ANY(%(quota_workspaces)s::uuid[]) THEN jsonb_build_array(
              jsonb_build_array('workspace_day', g.workspace_id, %(utc_day)s::date),
              jsonb_build_array('workspace_month', g.workspace_id, %(utc_month)s::date))
            ELSE '[]'::jsonb END,
         0, '', %(now)s, %(now)s
  FROM granted g
  ON CONFLICT (enrollment_id, step_id) DO UPDATE
  SET state = 'reserved', mailbox_id = EXCLUDED.mailbox_id, variant_id = EXCLUDED.variant_id,
      from_email = EXCLUDED.from_email, to_email = EXCLUDED.to_email,
      counters = EXCLUDED.counters, reserved_at = EXCLUDED.reserved_at, error = ''
  WHERE a.state = 'planned'
  RETURNING a.enrollment_id
), reserved AS MATERIALIZED (
  SELECT g.* FROM granted g JOIN inserted i ON i.enrollment_id = g.id
), moved AS (
  UPDATE sequences_enrollment e
  SET status = 'sending', mailbox_id = r.mailbox_id, wait_reason = '',
      variants = CASE WHEN r.variant_id IS NULL THEN e.variants
                 ELSE e.variants || jsonb_build_object(r.next_step_index::text, r.variant_id) END,
      updated_at = %(now)s
  FROM reserved r
  WHERE e.id = r.id
), paced AS (
  -- The mailbox's slot: the pacer moves on (the longest "minutes between sends" of the running
  -- campaigns sharing it, or 1–5 random minutes, whichever is longer), and the day's count and
  -- the recipient domains' counts go up, from zero on a new local day. (The tick gives a mailbox
  -- one send a batch; the sums keep the counts right for any batch.)
  INSERT INTO sequences_mailboxthrottle AS t (mailbox_id, workspace_id, next_send_at,
      last_assigned_at, backoff_level, backoff_successes, count_day, day_count, domain_counts)
  SELECT m.mailbox_id, m.workspace_id,
         %(now)s + greatest(
           make_interval(mins => CASE WHEN %(any_floor)s THEN (
             SELECT coalesce(max(c.min_minutes_between_sends), 0)
             FROM sequences_campaignmailbox cm JOIN sequences_campaign c ON c.id = cm.campaign_id
             WHERE cm.mailbox_id = m.mailbox_id AND c.status = 'running') ELSE 0 END),
           make_interval(secs => %(spacing_min)s + random() * (%(spacing_max)s - %(spacing_min)s))),
         %(now)s, 0, 0, m.day, m.n, m.domains
  FROM (
    SELECT mailbox_id, workspace_id, day, sum(n)::int AS n, jsonb_object_agg(domain, n) AS domains
    FROM (
      SELECT mailbox_id, workspace_id, day, domain, count(*) AS n
      FROM reserved GROUP BY mailbox_id, workspace_id, day, domain
    ) per_domain
    GROUP BY mailbox_id, workspace_id, day
  ) m
  ON CONFLICT (mailbox_id) DO UPDATE
  SET next_send_at = EXCLUDED.next_send_at,
      last_assigned_at = EXCLUDED.last_assigned_at,
      day_count = CASE WHEN t.count_day = EXCLUDED.count_day
                       THEN t.day_count + EXCLUDED.day_count ELSE EXCLUDED.day_count END,
      domain_counts = CASE
          WHEN t.count_day = EXCLUDED.count_day THEN t.domain_counts || (
            SELECT jsonb_object_agg(d.key, d.value::int + coalesce((t.domain_counts ->> d.key)::int, 0))
            FROM jsonb_each_text(EXCLUDED.domain_counts) AS d)
          ELSE EXCLUDED.domain_counts END,
      count_day = EXCLUDED.count_day
), counted AS (
  -- The campaign's day, the pool entry's own limit and the plan's quotas, where they exist.
  INSERT INTO sequences_sendcounter (workspace_id, scope, key, day, count)
  SELECT workspace_id, scope, key, day, count(*)
  FROM (
    SELECT r.workspace_id, 'campaign' AS scope, r.campaign_id::text AS key, r.campaign_day AS day
    FROM reserved r
    UNION ALL
    SELECT r.workspace_id, 'campaign_mailbox', r.campaign_id::text || ':' || r.mailbox_id::text, r.day
    FROM reserved r WHERE r.pair_limited
    UNION ALL
    SELECT r.workspace_id, q.scope, r.workspace_id::text, q.day
    FROM reserved r
    CROSS JOIN (VALUES ('workspace_day', %(utc_day)s::date),
                       ('workspace_month', %(utc_month)s::date)) AS q(scope, day)
    WHERE r.workspace_id = ANY(%(quota_workspaces)s::uuid[])
  ) AS taken
  GROUP BY workspace_id, scope, key, day
  ON CONFLICT (scope, key, day) DO UPDATE
  SET count = sequences_sendcounter.count + EXCLUDED.count
), domain_full AS (
  -- The recipient domain is full for this mailbox today: wait for the mailbox's midnight.
  UPDATE sequences_enrollment e
  SET next_action_at = (((j.day + 1)::timestamp) AT TIME ZONE j.zone),
      wait_reason = left('daily limit for ' || j.domain || ' reached on ' || j.from_email, 255),
      updated_at = %(now)s
  FROM judged j
  WHERE e.id = j.id AND j.step_id IS NOT NULL AND j.domain_used >= %(domain_limit)s
  RETURNING e.id
)
SELECT 'reserved', r.id::text, r.mailbox_id::text, r.campaign_id::text, r.next_step_index,
       r.used + 1, r.cap, r.domain_used + 1, r.domain
FROM reserved r
UNION ALL
SELECT 'refused', g.id::text, g.mailbox_id::text, g.campaign_id::text, g.next_step_index,
       NULL, NULL, NULL, NULL
FROM granted g WHERE g.id NOT IN (SELECT id FROM reserved)
UNION ALL
SELECT 'finished', j.id::text, NULL, j.campaign_id::text, j.next_step_index, NULL, NULL, NULL, NULL
FROM judged j WHERE j.step_id IS NULL
UNION ALL
SELECT 'waited', d.id::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM domain_full d
