-- The `sending` marker of one message, committed right before its SMTP transaction and only if
-- the send is still wanted: the action still reserved, its campaign running, its prospect still
-- in the sequence, the mailbox connected and enabled, the address not suppressed — all read
-- here, at the last moment. Returns no row when it is not wanted (or someone else took it); the
-- caller looks at why.
--
-- It is the one write of a send that must reach the disk before the hand-over, so it commits
-- synchronously whatever the session says. Outcomes are recorded later, in batches
-- (sql/record_sent.sql).
--
-- The row is found by its primary key, then updated by its physical address: with `state =
-- 'reserved'` in the same WHERE the planner may walk the partial index of reserved actions
-- instead (it does while statistics lag behind a burst of reservations), and that index keeps
-- an entry for every action marked since the last vacuum — a scan that grows with each message.
WITH durability AS (
  SELECT set_config('synchronous_commit', 'on', true)
), target AS MATERIALIZED (
  SELECT a.ctid AS tid FROM sequences_action a WHERE a.id = %(id)s::uuid
)
UPDATE sequences_action a
SET state = 'sending', sending_at = %(now)s, message_id = %(message_id)s, subject = %(subject)s
WHERE a.ctid = (SELECT tid FROM target)
  AND a.id = %(id)s::uuid
  AND a.state = 'reserved'
  AND EXISTS (SELECT 1 FROM durability)
  AND EXISTS (SELECT 1 FROM sequences_campaign c
              WHERE c.id = a.campaign_id AND c.status = 'running')
  AND EXISTS (SELECT 1 FROM sequences_enrollment e
              WHERE e.id = a.enrollment_id AND e.status = 'sending')
  AND EXISTS (SELECT 1 FROM mailboxes_mailbox m
              WHERE m.id = a.mailbox_id AND m.status = 'connected' AND m.sending_enabled)
  AND NOT EXISTS (SELECT 1 FROM prospects_suppression s
                  WHERE s.workspace_id = a.workspace_id
                    AND ((s.kind = 'email' AND s.value = lower(a.to_email))
                         OR (s.kind = 'domain'
                             AND s.value = lower(split_part(a.to_email, '@', 2)))))
RETURNING 1
