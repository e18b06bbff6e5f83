-- Give back one send of a mailbox's day, and of its recipient domain, when a reservation never
-- reached the server. A reservation of an earlier day gives nothing back: that day is over.
UPDATE sequences_mailboxthrottle t
SET day_count = greatest(t.day_count - 1, 0),
    domain_counts = CASE WHEN t.domain_counts ? %(domain)s
        THEN jsonb_set(t.domain_counts, ARRAY[%(domain)s],
                       to_jsonb(greatest((t.domain_counts ->> %(domain)s)::int - 1, 0)))
        ELSE t.domain_counts END
WHERE t.mailbox_id = %(mailbox_id)s AND t.count_day = %(day)s
