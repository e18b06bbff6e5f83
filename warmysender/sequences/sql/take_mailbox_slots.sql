-- One new send on each mailbox: the pacer moves on, and the day's count and the recipient
-- domain's count go up; both start again from zero when the mailbox's local day has changed.
INSERT INTO sequences_mailboxthrottle AS t (mailbox_id, workspace_id, next_send_at,
    last_assigned_at, backoff_level, backoff_successes, count_day, day_count, domain_counts)
SELECT v.mailbox_id, v.workspace_id, v.next_send_at, %(now)s, 0, 0, v.day, 1,
       jsonb_build_object(v.domain, 1)
FROM unnest(%(ids)b::uuid[], %(workspaces)b::uuid[], %(nexts)b::timestamptz[],
            %(days)b::date[], %(domains)b::text[])
     AS v(mailbox_id, workspace_id, next_send_at, day, domain)
ON CONFLICT (mailbox_id) DO UPDATE
SET next_send_at = EXCLUDED.next_send_at,
    last_assigned_at = EXCLUDED.last_assigned_at,
    day_count = CASE WHEN t.count_day = EXCLUDED.count_day THEN t.day_count + 1 ELSE 1 END,
    domain_counts = CASE
        WHEN t.count_day = EXCLUDED.count_day THEN t.domain_counts || (
            SELECT jsonb_object_agg(d.key, d.value::int + coalesce((t.domain_counts ->> d.key)::int, 0))
            FROM jsonb_each_text(EXCLUDED.domain_counts) AS d)
        ELSE EXCLUDED.domain_counts END,
    count_day = EXCLUDED.count_day
