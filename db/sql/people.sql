-- act_with_session --
-- For the rest of this transaction: the console's role (row-level security applies) acting through this session token.
SELECT set_config('role', 'inkwell_console', true), set_config('inkwell.session_token', %(token)s, true)

-- act_with_session_for_connection --
-- Until stop_acting: the console's role acting through this session token, on this connection.
SELECT set_config('role', 'inkwell_console', false), set_config('inkwell.session_token', %(token)s, false)

-- stop_acting --
-- Back to the connection's own role, with no session.
SELECT set_config('role', 'none', false), set_config('inkwell.session_token', '', false)

-- start_session --
-- A new session for a user with the sha256 of its token (the owner, or an acting user for themselves).
SELECT inkwell.start_session(%(user_id)s, %(token_hash)s, %(kind)s, %(name)s, %(expires_at)s)

-- end_session --
-- Ends the session of this token; false when none was live.
SELECT inkwell.end_session(%(token_hash)s)

-- touch_session --
-- The acting session's user (NULL: no live session), its use recorded at most once a minute.
SELECT inkwell.touch_session()

-- acting_user --
-- The account of the acting session (never its password hash).
SELECT u.id, u.username, u.display_name, u.role, u.organization_id, o.name AS organization_name, u.active
  FROM inkwell.users AS u
  JOIN inkwell.organizations AS o ON o.id = u.organization_id
 WHERE u.id = inkwell.acting_user_id()

-- acting_state --
-- The acting user's role (NULL: none, or inactive) and whether row-level security applies to this connection now.
SELECT inkwell.acting_role() AS role, row_security_active('inkwell.requests') AS restricted

-- get_user --
-- One account by id (never its password hash).
SELECT u.id, u.username, u.display_name, u.role, u.organization_id, o.name AS organization_name, u.active
  FROM inkwell.users AS u
  JOIN inkwell.organizations AS o ON o.id = u.organization_id
 WHERE u.id = %(user_id)s

-- find_oidc_user --
-- The account linked to an identity provider's issuer and subject.
SELECT u.id, u.username, u.display_name, u.role, u.organization_id, o.name AS organization_name, u.active
  FROM inkwell.users AS u
  JOIN inkwell.organizations AS o ON o.id = u.organization_id
 WHERE u.oidc_issuer = %(issuer)s AND u.oidc_subject = %(subject)s

-- list_users --
-- Every account the acting user may see, by organization and username.
SELECT u.id, u.username, u.display_name, u.role, u.organization_id, o.name AS organization_name, u.active
  FROM inkwell.users AS u
  JOIN inkwell.organizations AS o ON o.id = u.organization_id
 ORDER BY o.name, u.username

-- first_admin --
-- The oldest admin account, active ones first.
SELECT u.id, u.username, u.display_name, u.role, u.organization_id, o.name AS organization_name, u.active
  FROM inkwell.users AS u
  JOIN inkwell.organizations AS o ON o.id = u.organization_id
 WHERE u.role = 'admin'
 ORDER BY u.active DESC, u.id
 LIMIT 1

-- any_user_exists --
-- Whether any account exists yet.
SELECT EXISTS (SELECT 1 FROM inkwell.users)

-- sign_in_account --
-- The account and password hash for a sign-in (owner connection only: inkwell_console cannot read hashes).
SELECT id, active, password_hash FROM inkwell.users WHERE username = %(username)s

-- rehash_password --
-- Replace a password hash made with older parameters, unless it changed meanwhile (the same password: sessions go on).
UPDATE inkwell.users
   SET password_hash = %(new_hash)s
 WHERE id = %(user_id)s AND password_hash = %(old_hash)s
   AND set_config('inkwell.rehashing_password', 'on', true) = 'on'

-- lock_first_admin --
-- Serialises the run commands that may create the first admin at the same time.
SELECT pg_advisory_xact_lock(7415041)

-- organization_id_by_name --
-- An organization's id by its exact name.
SELECT id FROM inkwell.organizations WHERE name = %(name)s

-- create_organization --
-- A new organization (admins only, or while no account exists); audited.
SELECT inkwell.create_organization(%(name)s)

-- list_organizations --
-- The organizations the acting user may see, with their balance and number of accounts, by name.
SELECT o.id, o.name, o.credit_balance, o.created_at, count(u.id) AS users
  FROM inkwell.organizations AS o
  LEFT JOIN inkwell.users AS u ON u.organization_id = o.id
 GROUP BY o.id
 ORDER BY o.name

-- create_user --
-- A new account (admins only, or the first admin while no account exists); audited.
SELECT inkwell.create_user(%(username)s, %(display_name)s, %(role)s, %(organization_id)s, %(password_hash)s,
                           %(oidc_issuer)s, %(oidc_subject)s)

-- set_user_role --
-- Change an account's role (admins only; one active admin must remain); audited. False: no such account.
SELECT inkwell.set_user_role(%(user_id)s, %(role)s)

-- set_user_active --
-- Activate or deactivate an account (admins only; one active admin must remain); audited. False: no such account.
SELECT inkwell.set_user_active(%(user_id)s, %(active)s)

-- set_user_password --
-- Replace an account's password hash (admins only); audited. False: no such account.
SELECT inkwell.set_user_password(%(user_id)s, %(password_hash)s)

-- audit --
-- One audit entry by the acting user ('system' when none), in the caller's transaction.
SELECT inkwell.audit(%(action)s, %(target_type)s, %(target_id)s, %(details)s)

-- audit_entries --
-- The newest audit entries the acting user may read, optionally narrowed, before a point in time.
SELECT a.id, a.at, a.actor_user_id, a.actor_name, a.action, a.organization_id, o.name AS organization_name,
       a.target_type, a.target_id, inkwell.audit_target_name(a.id) AS target_name, a.details
  FROM inkwell.audit_log AS a
  LEFT JOIN inkwell.organizations AS o ON o.id = a.organization_id
 WHERE (%(action)s::text IS NULL OR a.action = %(action)s::text)
   AND (%(actor_user_id)s::bigint IS NULL OR a.actor_user_id = %(actor_user_id)s::bigint)
   AND (%(target_type)s::text IS NULL OR a.target_type = %(target_type)s::text)
   AND (%(target_id)s::text IS NULL OR a.target_id = %(target_id)s::text)
   AND (%(before)s::timestamptz IS NULL OR a.at < %(before)s::timestamptz)
 ORDER BY a.at DESC, a.id DESC
 LIMIT %(limit)s

-- sign_in_challenge --
-- Seconds to wait before this username may try again from this address (0: now), and the argon2 settings to hash the typed password with.
SELECT wait_seconds, settings, hash_chars FROM inkwell.sign_in_challenge(%(username)s, %(address)s)

-- sign_in --
-- The user id of a matching password with a new console session (NULL: no match, counted; negative: seconds still to wait).
SELECT inkwell.sign_in(%(username)s, %(hash_part)s, %(address)s, %(token_hash)s, %(expires_at)s, %(new_hash)s)

-- sign_in_with_identity --
-- A console session for the active account linked to this identity provider's issuer and subject; its id, or NULL.
SELECT inkwell.sign_in_with_identity(%(issuer)s, %(subject)s, %(token_hash)s, %(expires_at)s)

-- grant_starting_credits --
-- A new install's first organization starts with a stated balance, in the ledger like a top-up.
WITH granted AS (
    UPDATE inkwell.organizations SET credit_balance = credit_balance + %(credits)s
     WHERE id = %(organization_id)s
 RETURNING id
)
INSERT INTO inkwell.credit_ledger (organization_id, delta, reason, note)
SELECT id, %(credits)s, 'top_up', 'Starting balance of a new install' FROM granted
