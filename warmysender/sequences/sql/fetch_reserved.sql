-- The oldest reserved actions of one mailbox, each with its enrollment and prospect (the columns
-- of the three tables, in model order, are filled in by sending.fetch_reserved).
SELECT {columns}
FROM sequences_action a
JOIN sequences_enrollment e ON e.id = a.enrollment_id
JOIN prospects_prospect p ON p.id = e.prospect_id
WHERE a.mailbox_id = %(mailbox_id)s AND a.state = 'reserved'
ORDER BY a.reserved_at, a.id
LIMIT %(limit)s
