-- One action per (enrollment, step), ever. A step whose action exists as `planned` (a send that
-- was handed back before it reached the server) is reserved again; any other existing action is
-- left alone and the enrollment is not returned, so a step can never be sent twice.
INSERT INTO sequences_action (id, workspace_id, enrollment_id, step_id, campaign_id, variant_id,
                              mailbox_id, channel, state, from_email, to_email, message_id,
                              subject, counters, recovery_count, error, created_at, reserved_at)
SELECT gen_random_uuid(), e.workspace_id, e.id, v.step_id, e.campaign_id, v.variant_id,
       v.mailbox_id, 'email', 'reserved', m.email, p.email, '', '', v.counters, 0, '',
       %(now)s, %(now)s
FROM unnest(%(enrollment_ids)s::uuid[], %(step_ids)s::bigint[], %(variant_ids)s::bigint[],
            %(mailbox_ids)s::uuid[], %(counters)s::jsonb[])
     AS v(enrollment_id, step_id, variant_id, mailbox_id, counters)
JOIN sequences_enrollment e ON e.id = v.enrollment_id
JOIN prospects_prospect p ON p.id = e.prospect_id
JOIN mailboxes_mailbox m ON m.id = v.mailbox_id
ON CONFLICT (enrollment_id, step_id) DO UPDATE
SET state = 'reserved', mailbox_id = EXCLUDED.mailbox_id, variant_id = EXCLUDED.variant_id,
    from_email = EXCLUDED.from_email, to_email = EXCLUDED.to_email,
    counters = EXCLUDED.counters, reserved_at = EXCLUDED.reserved_at, error = ''
WHERE sequences_action.state = 'planned'
RETURNING enrollment_id, mailbox_id, counters
