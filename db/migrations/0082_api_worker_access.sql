-- The workers' role (0071) sees every row of the tables it had then through a `workers_all` policy;
-- the HTTP API's tables with row-level security (0080) need theirs too: the webhook delivery job
-- reads callbacks and records its attempts, housekeeping deletes old idempotency keys, and the
-- API's event fan-out and health check read as the workers' role.
CREATE POLICY workers_all ON inkwell.idempotency_keys TO inkwell_worker USING (true) WITH CHECK (true);
CREATE POLICY workers_all ON inkwell.request_callbacks TO inkwell_worker USING (true) WITH CHECK (true);
CREATE POLICY workers_all ON inkwell.webhook_deliveries TO inkwell_worker USING (true) WITH CHECK (true);
