-- Why each pool mailbox of the open campaigns cannot take new work now, and until when (NULL:
-- it can). Shared by the deferral and the claim (tick_claim.sql), so both judge a mailbox the
-- same way. The mailbox's day is its own: its count of the day is void once its local midnight
-- has passed.
SELECT s.campaign_id, s.mailbox_id,
       CASE
         WHEN s.status <> 'connected' THEN %(now)s + interval '1 hour'
         WHEN NOT s.sending_enabled THEN %(now)s + interval '1 hour'
         WHEN s.used >= s.cap OR s.pair_used >= s.max_sends_per_day THEN s.midnight
         WHEN greatest(s.next_send_at, s.backoff_until) > %(now)s
           THEN greatest(s.next_send_at, s.backoff_until)
       END AS until,
       CASE
         WHEN s.status <> 'connected' THEN 'mailbox ' || s.email || ' is ' || s.status
         WHEN NOT s.sending_enabled THEN 'sending is switched off on ' || s.email
         WHEN s.used >= s.cap THEN 'daily cap reached on ' || s.email
         WHEN s.pair_used >= s.max_sends_per_day
           THEN 'campaign limit per mailbox reached on ' || s.email
         WHEN s.backoff_until > %(now)s THEN 'mailbox ' || s.email || ' is backing off'
         ELSE 'pacing sends of ' || s.email
       END AS reason,
       s.last_assigned_at,
       -- What the claim needs of a ready mailbox.
       s.email, s.workspace_id, s.zone, s.cap, s.day, s.used,
       s.max_sends_per_day IS NOT NULL AS pair_limited
FROM (
  SELECT l.*,
         ((l.day + 1)::timestamp) AT TIME ZONE l.zone AS midnight,
         CASE WHEN l.count_day = l.day THEN l.day_count ELSE 0 END AS used,
         -- The pool entry's own count of the day, looked up only where it has a limit.
         CASE WHEN l.max_sends_per_day IS NOT NULL THEN coalesce((
           SELECT cmc.count FROM sequences_sendcounter cmc
           WHERE cmc.scope = 'campaign_mailbox'
             AND cmc.key = l.campaign_id::text || ':' || l.mailbox_id::text AND cmc.day = l.day
         ), 0) END AS pair_used
  FROM (
    SELECT cm.campaign_id, cm.mailbox_id, cm.max_sends_per_day, m.status, m.sending_enabled,
           m.email, m.workspace_id, m.timezone AS zone, least(m.daily_limit, %(hard_cap)s) AS cap,
           (%(now)s AT TIME ZONE m.timezone)::date AS day,
           t.count_day, t.day_count, t.next_send_at, t.backoff_until, t.last_assigned_at
    FROM sequences_campaignmailbox cm
    JOIN mailboxes_mailbox m ON m.id = cm.mailbox_id
    LEFT JOIN sequences_mailboxthrottle t ON t.mailbox_id = cm.mailbox_id
    WHERE cm.is_active AND cm.campaign_id IN (SELECT unnest(%(open_campaigns)s::uuid[]))
  ) l
) s
