-- Count reserved sends against their caps: add n to each (scope, key, day).
INSERT INTO sequences_sendcounter (workspace_id, scope, key, day, count)
SELECT v.workspace_id, v.scope, v.key, v.day, v.n
FROM unnest(%(workspace_ids)s::uuid[], %(scopes)s::text[], %(keys)s::text[], %(days)s::date[],
            %(ns)s::int[]) AS v(workspace_id, scope, key, day, n)
ON CONFLICT (scope, key, day) DO UPDATE
SET count = sequences_sendcounter.count + EXCLUDED.count
