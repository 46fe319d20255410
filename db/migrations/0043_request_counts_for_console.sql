-- The Overview's requests-per-status rollup (0026) for the console roles that read every request.
--
-- inkwell.count_requests_by_status() reads the rollup when the caller can, and otherwise counts the
-- requests the caller may read. The rollup counts everyone's requests, so under inkwell_console
-- (0041) only operators, admins and analysts may read it; editors get no row of
-- request_counts_rollup, and so their own organization's live count.
GRANT SELECT ON inkwell.request_counts_rollup, inkwell.request_counts_by_day TO inkwell_console;

CREATE POLICY request_counts_rollup_read ON inkwell.request_counts_rollup FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst'));

CREATE POLICY request_counts_by_day_read ON inkwell.request_counts_by_day FOR SELECT TO inkwell_console
USING ((SELECT inkwell.acting_role()) IN ('operator', 'admin', 'analyst'));
