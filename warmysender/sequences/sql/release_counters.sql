-- Give back the capacity of reservations that never reached a server.
UPDATE sequences_sendcounter c
SET count = greatest(c.count - v.n, 0)
FROM unnest(%(scopes)s::text[], %(keys)s::text[], %(days)s::date[], %(ns)s::int[])
     AS v(scope, key, day, n)
WHERE c.scope = v.scope AND c.key = v.key AND c.day = v.day
