-- Per step and variant of one campaign: emails sent, and how many of them were opened, clicked,
-- replied to and bounced. Each is counted once per email (several opens of one email are one),
-- so no number exceeds `sent`. Scanner hits are left out.
--
-- Replies and bounces come from the enrollment's status (stop_on_reply / stop_on_bounce) or from
-- the campaign's `reply` / `bounce` events (which name the prospect or the enrollment); each is
-- credited to the last email sent to the prospect before it.
WITH sent AS (
    SELECT a.id, a.step_id, a.variant_id, a.enrollment_id, a.finished_at
      FROM sequences_action a
     WHERE a.campaign_id = %(campaign)s AND a.state = 'sent'
),
hits AS (
    SELECT h.action_id, bool_or(h.kind = 'open') AS opened, bool_or(h.kind = 'click') AS clicked
      FROM email_trackinghit h
     WHERE h.campaign_id = %(campaign)s AND NOT h.is_scanner
     GROUP BY h.action_id
),
outcomes AS (
    SELECT e.id AS enrollment_id,
           CASE e.status WHEN 'replied' THEN 'reply' ELSE 'bounce' END AS kind,
           e.finished_at AS at
      FROM sequences_enrollment e
     WHERE e.campaign_id = %(campaign)s AND e.status IN ('replied', 'bounced')
    UNION ALL
    SELECT e.id, CASE WHEN ev.type IN ('reply', 'replied') THEN 'reply' ELSE 'bounce' END,
           ev.created_at
      FROM sequences_campaignevent ev
      JOIN sequences_enrollment e
        ON e.campaign_id = ev.campaign_id
       AND (e.id::text = ev.data ->> 'enrollmentId' OR e.prospect_id::text = ev.data ->> 'prospectId')
     WHERE ev.campaign_id = %(campaign)s
       AND ev.type IN ('reply', 'replied', 'bounce', 'bounced')
       -- Soft bounces are recorded with reason `soft` (inbox sync) and count for nothing here.
       AND ev.reason <> 'soft'
       AND coalesce(ev.data ->> 'bounceType', 'hard') <> 'soft'
),
first_outcomes AS (
    SELECT enrollment_id, kind, min(at) AS at FROM outcomes GROUP BY enrollment_id, kind
),
credited AS (
    SELECT DISTINCT ON (o.enrollment_id, o.kind) o.kind, s.id AS action_id
      FROM first_outcomes o
      JOIN sent s ON s.enrollment_id = o.enrollment_id
     ORDER BY o.enrollment_id, o.kind,
              (o.at IS NOT NULL AND s.finished_at > o.at), s.finished_at DESC
)
SELECT s.step_id,
       s.variant_id,
       count(*) AS sent,
       count(*) FILTER (WHERE h.opened) AS opened,
       count(*) FILTER (WHERE h.clicked) AS clicked,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM credited c WHERE c.action_id = s.id AND c.kind = 'reply')) AS replied,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM credited c WHERE c.action_id = s.id AND c.kind = 'bounce')) AS bounced
  FROM sent s
  LEFT JOIN hits h ON h.action_id = s.id
 GROUP BY s.step_id, s.variant_id
