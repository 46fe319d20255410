-- act_with_api_token --
-- First in a transaction: act through the session of this API token until it ends (role inkwell_console, row-level security); its account, or no row when the session is not live.
SELECT * FROM inkwell.act_with_api_token(%(token)s)

-- read_request_as_api_caller --
-- One statement: the request as an API token's user (or an anonymous visitor, by hash) sees it; no row when hidden or unknown; SQLSTATE 28000 for a token of no live session.
SELECT * FROM inkwell.api_read_request(%(token)s, %(visitor_hash)s, %(request_id)s)
