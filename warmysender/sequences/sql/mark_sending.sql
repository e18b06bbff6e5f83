-- Commit `sending` right before the SMTP transaction, and only if the send is still wanted:
-- the action still reserved, its campaign running, its prospect still in the sequence, the
-- mailbox connected and enabled, the address not suppressed. No row comes back otherwise, and the
-- caller looks at why. Everything is read in this one statement, at the last moment.
UPDATE sequences_action a
SET state = 'sending', sending_at = %(now)s, message_id = %(message_id)s, subject = %(subject)s
WHERE a.id = %(id)s
  AND a.state = 'reserved'
  AND EXISTS (SELECT 1 FROM sequences_campaign c WHERE c.id = a.campaign_id AND c.status = 'running')
  AND EXISTS (SELECT 1 FROM sequences_enrollment e
              WHERE e.id = a.enrollment_id AND e.status = 'sending')
  AND EXISTS (SELECT 1 FROM mailboxes_mailbox m
              WHERE m.id = a.mailbox_id AND m.status = 'connected' AND m.sending_enabled)
  AND NOT EXISTS (SELECT 1 FROM prospects_suppression s
                  WHERE s.workspace_id = a.workspace_id
                    AND ((s.kind = 'email' AND s.value = lower(a.to_email))
                         OR (s.kind = 'domain' AND s.value = lower(split_part(a.to_email, '@', 2)))))
RETURNING a.id
