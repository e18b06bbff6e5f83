-- One action per (enrollment, step), ever. A step whose action exists as `planned` (a send that
-- was handed back before it reached the server) is reserved again; any other existing action is
-- left alone and the enrollment is not returned, so a step can never be sent twice.
INSERT INTO sequences_action (id, workspace_id, enrollment_id, step_id, campaign_id, variant_id,
                              mailbox_id, channel, state, from_email, to_email, message_id,
                              subject, counters, recovery_count, error, created_at, reserved_at)
SELECT gen_random_uuid(), v.workspace_id, v.enrollment_id, v.step_id, v.campaign_id, v.variant_id,
       v.mailbox_id, 'email', 'reserved', v.from_email, v.to_email, '', '', v.counters, 0, '',
       %(now)s, %(now)s
FROM unnest(%(workspace_ids)b::uuid[], %(enrollment_ids)b::uuid[], %(step_ids)b::bigint[],
            %(campaign_ids)b::uuid[], %(variant_ids)b::bigint[], %(mailbox_ids)b::uuid[],
            %(from_emails)b::text[], %(to_emails)b::text[], %(counters)b::jsonb[])
     AS v(workspace_id, enrollment_id, step_id, campaign_id, variant_id, mailbox_id, from_email,
          to_email, counters)
ON CONFLICT (enrollment_id, step_id) DO UPDATE
SET state = 'reserved', mailbox_id = EXCLUDED.mailbox_id, variant_id = EXCLUDED.variant_id,
    from_email = EXCLUDED.from_email, to_email = EXCLUDED.to_email,
    counters = EXCLUDED.counters, reserved_at = EXCLUDED.reserved_at, error = ''
WHERE sequences_action.state = 'planned'
RETURNING enrollment_id
