-- act_as_visitor --
-- For the rest of this transaction: the console's role acting as an anonymous visitor (the sha256 of its session id, hex).
SELECT set_config('role', 'inkwell_console', true), set_config('inkwell.visitor_hash', %(visitor_hash)s, true)

-- admit_visitor_submission --
-- Count one anonymous submission against its session id and address, or refuse it (IK005).
SELECT inkwell.admit_visitor_submission(%(address_hash)s, %(per_visitor)s, %(per_address)s)

-- forget_expired_idempotency_key --
-- A key older than 24 hours is forgotten when it is used again.
DELETE FROM inkwell.idempotency_keys
 WHERE owner = inkwell.acting_idempotency_owner() AND key = %(key)s AND created_at < now() - interval '24 hours'

-- claim_idempotency_key --
-- The first create with this key takes it (a row back); a concurrent one waits here for the first to commit or roll back.
INSERT INTO inkwell.idempotency_keys (key, body_hash) VALUES (%(key)s, %(body_hash)s)
ON CONFLICT (owner, key) DO NOTHING
RETURNING key

-- get_idempotency_key --
-- The body hash and answer stored for this key of the acting owner.
SELECT body_hash, response FROM inkwell.idempotency_keys
 WHERE owner = inkwell.acting_idempotency_owner() AND key = %(key)s

-- answer_idempotency_key --
-- What the create that took the key answered, for every later create with it.
UPDATE inkwell.idempotency_keys SET response = %(response)s
 WHERE owner = inkwell.acting_idempotency_owner() AND key = %(key)s

-- delete_old_idempotency_keys --
-- Housekeeping: keys older than 24 hours answer nothing any more.
DELETE FROM inkwell.idempotency_keys WHERE created_at < now() - interval '24 hours'

-- list_own_requests --
-- The acting user's (or visitor's) own requests, newest first, a page after a keyset cursor; filters optional.
SELECT * FROM inkwell.requests
 WHERE (user_id = inkwell.acting_user_id() OR visitor_hash = inkwell.acting_visitor_hash())
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
   AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s::timestamptz)
   AND (%(before_created_at)s::timestamptz IS NULL
        OR (created_at, id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s

-- service_health --
-- For load balancers: workers that beat recently, and jobs waiting to run.
SELECT (SELECT count(*) FROM procrastinate_workers
         WHERE last_heartbeat > now() - make_interval(secs => %(stale_after_seconds)s)) AS live_workers,
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo') AS queue_depth

-- add_request_callback --
-- The URL to POST a request's final status to (the acting user's own request).
INSERT INTO inkwell.request_callbacks (request_id, url) VALUES (%(request_id)s, %(url)s)

-- get_request_callback --
-- A request's callback URL and the signing secret of the user who asked for it (owner connection: the worker).
SELECT c.url, c.user_id, s.secret
  FROM inkwell.request_callbacks AS c
  LEFT JOIN inkwell.webhook_secrets AS s ON s.user_id = c.user_id
 WHERE c.request_id = %(request_id)s

-- webhook_secret --
-- The acting user's webhook signing secret, made with the given one on first use.
SELECT inkwell.webhook_secret(%(new_secret)s)

-- ensure_webhook_secret_for_user --
-- The owner connection's form (the worker): a user's secret, made on first use.
WITH made AS (
    INSERT INTO inkwell.webhook_secrets (user_id, secret) VALUES (%(user_id)s, %(new_secret)s)
    ON CONFLICT (user_id) DO NOTHING RETURNING secret)
SELECT secret FROM made UNION ALL SELECT secret FROM inkwell.webhook_secrets WHERE user_id = %(user_id)s LIMIT 1

-- record_webhook_attempt --
-- One delivery attempt of a completion webhook and how it went.
INSERT INTO inkwell.webhook_deliveries (request_id, webhook_id, attempt, url, status_code, error, duration_ms)
VALUES (%(request_id)s, %(webhook_id)s, %(attempt)s, %(url)s, %(status_code)s, %(error)s, %(duration_ms)s)

-- list_webhook_deliveries --
-- A request's webhook delivery attempts, oldest first (the History detail).
SELECT id, webhook_id, attempt, url, status_code, error, duration_ms, attempted_at
  FROM inkwell.webhook_deliveries WHERE request_id = %(request_id)s ORDER BY id

-- organization_name --
-- One organization's name (NULL: no such organization, or not readable by the acting user).
SELECT name FROM inkwell.organizations WHERE id = %(organization_id)s

-- get_requests_by_ids --
-- Several requests by id (owner connection: the event streams' fan-out reads each change once).
SELECT * FROM inkwell.requests WHERE id = ANY(%(ids)s::uuid[])

-- list_api_tokens --
-- The acting user's API tokens (an admin's: everyone's), live ones first, newest first.
SELECT * FROM inkwell.list_api_tokens()

-- revoke_api_token --
-- End an API token at once (own, or anyone's for an admin); false when it may not or was ended already.
SELECT inkwell.revoke_api_token(%(token_id)s)

-- follow_requests --
-- An event hub's LISTEN connection (its backend pid) follows these requests: their changes are announced (migration 0150).
SELECT inkwell.follow_requests(%(request_ids)s::uuid[], %(listener_pid)s)

-- unfollow_request --
-- The hub's last stream on this request ended.
SELECT inkwell.unfollow_request(%(request_id)s, %(listener_pid)s)

-- forget_gone_listeners --
-- Followed requests of listeners that are gone, or of requests that ended over an hour ago; returns how many.
SELECT inkwell.forget_gone_listeners()
