-- top_up_credits --
-- Add credits to an organization and return the new balance (the database allows admins only).
SELECT inkwell.top_up_credits(%(organization_id)s, %(credits)s, %(note)s)

-- credit_balance --
-- The credits an organization can still spend.
SELECT credit_balance FROM inkwell.organizations WHERE id = %(organization_id)s

-- credit_ledger --
-- An organization's balance changes, newest first, with who made them.
SELECT l.id, l.organization_id, l.request_id, l.delta, l.reason, l.actor_user_id, u.username AS actor_name,
       l.note, l.created_at
  FROM inkwell.credit_ledger AS l
  LEFT JOIN inkwell.users AS u ON u.id = l.actor_user_id
 WHERE l.organization_id = %(organization_id)s
 ORDER BY l.created_at DESC, l.id DESC
 LIMIT %(limit)s

-- kind_costs --
-- What one request of each kind costs, in credits.
SELECT kind, credits FROM inkwell.kind_costs ORDER BY kind
