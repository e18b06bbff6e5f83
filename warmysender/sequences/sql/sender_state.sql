-- Why each pool mailbox of the open campaigns cannot take new work now, and until when (NULL:
-- it can). Shared by the deferral and the claim (tick_claim.sql), so both judge a mailbox the
-- same way. The mailbox's day is its own: its count of the day is void once its local midnight
-- has passed.
SELECT cm.campaign_id, cm.mailbox_id,
       CASE
         WHEN m.status <> 'connected' THEN %(now)s + interval '1 hour'
         WHEN NOT m.sending_enabled THEN %(now)s + interval '1 hour'
         WHEN t.count_day = (%(now)s AT TIME ZONE m.timezone)::date
              AND t.day_count >= least(m.daily_limit, %(hard_cap)s)
           THEN ((((%(now)s AT TIME ZONE m.timezone)::date + 1)::timestamp) AT TIME ZONE m.timezone)
         WHEN cm.max_sends_per_day IS NOT NULL AND coalesce(cmc.count, 0) >= cm.max_sends_per_day
           THEN ((((%(now)s AT TIME ZONE m.timezone)::date + 1)::timestamp) AT TIME ZONE m.timezone)
         WHEN greatest(t.next_send_at, t.backoff_until) > %(now)s
           THEN greatest(t.next_send_at, t.backoff_until)
       END AS until,
       CASE
         WHEN m.status <> 'connected' THEN 'mailbox ' || m.email || ' is ' || m.status
         WHEN NOT m.sending_enabled THEN 'sending is switched off on ' || m.email
         WHEN t.count_day = (%(now)s AT TIME ZONE m.timezone)::date
              AND t.day_count >= least(m.daily_limit, %(hard_cap)s)
           THEN 'daily cap reached on ' || m.email
         WHEN cm.max_sends_per_day IS NOT NULL AND coalesce(cmc.count, 0) >= cm.max_sends_per_day
           THEN 'campaign limit per mailbox reached on ' || m.email
         WHEN t.backoff_until > %(now)s THEN 'mailbox ' || m.email || ' is backing off'
         ELSE 'pacing sends of ' || m.email
       END AS reason,
       t.last_assigned_at,
       -- What the claim needs of a ready mailbox.
       m.email, m.workspace_id, m.timezone AS zone, least(m.daily_limit, %(hard_cap)s) AS cap,
       (%(now)s AT TIME ZONE m.timezone)::date AS day,
       CASE WHEN t.count_day = (%(now)s AT TIME ZONE m.timezone)::date
            THEN t.day_count ELSE 0 END AS used,
       cm.max_sends_per_day IS NOT NULL AS pair_limited
FROM sequences_campaignmailbox cm
JOIN mailboxes_mailbox m ON m.id = cm.mailbox_id
LEFT JOIN sequences_mailboxthrottle t ON t.mailbox_id = cm.mailbox_id
LEFT JOIN sequences_sendcounter cmc
       ON cm.max_sends_per_day IS NOT NULL AND cmc.scope = 'campaign_mailbox'
      AND cmc.key = cm.campaign_id::text || ':' || cm.mailbox_id::text
      AND cmc.day = (%(now)s AT TIME ZONE m.timezone)::date
WHERE cm.is_active AND cm.campaign_id IN (SELECT unnest(%(open_campaigns)s::uuid[]))
