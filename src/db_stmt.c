/*
 * db_stmt.c - the SQL of every prepared statement, prepared on each new connection.
 *
 * Each entry is the one description of a statement's parameters: calls of
 * SQL functions name every argument (p_x => $n), so a function whose
 * parameters were renamed or reordered fails to prepare instead of taking
 * values in the wrong places, and nparams is checked against the server's
 * own count when the statement is prepared and against the values bound on
 * every call (db_exec). The binding code in db_<module>.c follows the $n
 * order written here.
 */
#include "db_stmt.h"

const struct db_stmt_def db_stmt_defs[DB_STMT_COUNT] = {
	[DB_STMT_CHARGE_CREATE] = { "charge_create",
		"SELECT outcome, status_code, body, expires_in_ms FROM create_charge("
		"p_user_id => $1, p_key => $2, p_fingerprint => $3, p_ttl_ms => $4, p_wait_ms => $5,"
		" p_charge_id => $6, p_event_id => $7, p_amount => $8, p_currency => $9,"
		" p_source => $10, p_description => $11, p_metadata => $12, p_failure_code => $13,"
		" p_decline_code => $14, p_error_body => $15, p_request_id => $16,"
		" p_capture => $17)", 17 },
	[DB_STMT_CHARGE_GET] = { "charge_get",
		"SELECT charge_object(c)::text FROM charges c WHERE c.id = $1 AND c.user_id = $2", 2 },
	[DB_STMT_APIKEY_FIND] = { "apikey_find",
		"SELECT user_id, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL", 1 },
	[DB_STMT_APIKEY_INSERT] = { "apikey_insert",
		"INSERT INTO api_keys (id, user_id, secret_hash) VALUES ($1, $2, $3)", 3 },
	[DB_STMT_APIKEY_REVOKE] = { "apikey_revoke",
		"UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", 1 },
	[DB_STMT_IDEM_PURGE] = { "idem_purge",
		/* Small batches, skipping rows a retry is reading or replacing right now. */
		"SELECT purge_idempotency_keys(p_batch => $1)", 1 },
	[DB_STMT_PING] = { "ping", "SELECT 1", 0 },
	[DB_STMT_WEBHOOK_CREATE] = { "webhook_create",
		"SELECT create_webhook_endpoint(p_id => $1, p_user_id => $2, p_url => $3,"
		" p_enabled_events => $4::json, p_secret => $5, p_max => $6)::text", 6 },
	[DB_STMT_WEBHOOK_GET] = { "webhook_get",
		"SELECT webhook_endpoint_object(w)::text FROM webhook_endpoints w"
		" WHERE w.id = $1 AND w.user_id = $2 AND w.deleted_at IS NULL", 2 },
	[DB_STMT_WEBHOOK_DELETE] = { "webhook_delete",
		"SELECT CASE WHEN delete_webhook_endpoint(p_id => $1, p_user_id => $2) THEN $1::text END",
		2 },
	[DB_STMT_DELIVERY_LIST] = { "delivery_list",
		"SELECT coalesce(json_agg(webhook_delivery_object(d) ORDER BY d.created DESC, d.id DESC),"
		" '[]')::text FROM (SELECT * FROM webhook_deliveries WHERE user_id = $1"
		" AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR event_id = $3)"
		" AND ($4::text IS NULL OR endpoint_id = $4)"
		" ORDER BY created DESC, id DESC LIMIT $5) d", 5 },
	[DB_STMT_DELIVERY_REPLAY] = { "delivery_replay",
		"SELECT relay_replay(p_id => $1, p_user_id => $2)::text", 2 },
	[DB_STMT_RELAY_FANOUT] = { "relay_fanout", "SELECT relay_fanout(p_batch => $1)", 1 },
	[DB_STMT_RELAY_CLAIM] = { "relay_claim",
		"SELECT delivery_id, event_id, endpoint_id, attempts, url, secret, body, lease, created"
		" FROM relay_claim(p_batch => $1, p_lease_ms => $2, p_per_endpoint => $3,"
		" p_in_flight => $4::json)", 4 },
	[DB_STMT_RELAY_RECORD] = { "relay_record", "SELECT relay_record(p_results => $1::json)", 1 },
	[DB_STMT_RELAY_REPLAY_DEAD] = { "relay_replay_dead",
		"SELECT relay_replay_dead(p_endpoint_id => $1)", 1 },
	[DB_STMT_RELAY_STATUS] = { "relay_status",
		"SELECT (SELECT count(*) FROM outbox_events WHERE published_at IS NULL),"
		" (SELECT coalesce(extract(epoch FROM now() - min(created)), 0)::float8"
		"    FROM outbox_events WHERE published_at IS NULL),"
		" (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),"
		" (SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)::float8"
		"    FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()),"
		" (SELECT count(*) FROM webhook_deliveries WHERE status = 'dead')", 0 },
	[DB_STMT_REFUND_CREATE] = { "refund_create",
		"SELECT outcome, status_code, body FROM create_refund("
		"p_user_id => $1, p_key => $2, p_fingerprint => $3, p_ttl_ms => $4, p_wait_ms => $5,"
		" p_refund_id => $6, p_charge_id => $7, p_amount => $8, p_reason => $9,"
		" p_metadata => $10, p_request_id => $11, p_refund_event_id => $12,"
		" p_charge_event_id => $13)", 13 },
	[DB_STMT_REFUND_GET] = { "refund_get",
		"SELECT refund_object(r)::text FROM refunds r WHERE r.id = $1 AND r.user_id = $2", 2 },
	[DB_STMT_EVENT_GET] = { "event_get",
		"SELECT event_object(e)::text FROM outbox_events e WHERE e.id = $1 AND e.user_id = $2",
		2 },
	[DB_STMT_LIST_PAGE] = { "list_page",
		"SELECT data, has_more FROM list_page(p_kind => $1, p_user_id => $2, p_limit => $3,"
		" p_after => $4, p_before => $5, p_gte => to_timestamp($6::bigint),"
		" p_lt => to_timestamp($7::bigint), p_filter_col => $8, p_filter_val => $9)", 9 },
	[DB_STMT_EVENT_PURGE] = { "event_purge",
		"SELECT purge_published_events(p_retention_ms => $1, p_batch => $2)", 2 },
	[DB_STMT_RELAY_NATS_CLAIM] = { "relay_nats_claim",
		"SELECT seq, event_id, type, body FROM relay_nats_claim(p_batch => $1, p_lease_ms => $2)",
		2 },
	[DB_STMT_RELAY_NATS_RECORD] = { "relay_nats_record",
		"SELECT relay_nats_record(p_published => $1::bigint[], p_failed => $2::bigint[])", 2 },
	[DB_STMT_RELAY_NATS_STATUS] = { "relay_nats_status",
		"SELECT count(*), coalesce(extract(epoch FROM now() - min(created)), 0)::float8"
		" FROM outbox_events WHERE nats_published_at IS NULL", 0 },
	[DB_STMT_EVENT_PURGE_NATS] = { "event_purge_nats",
		"SELECT purge_published_events_nats(p_retention_ms => $1, p_batch => $2)", 2 },
	[DB_STMT_RELAY_RELEASE] = { "relay_release", "SELECT relay_release(p_leases => $1::json)", 1 },
	[DB_STMT_CHARGE_CAPTURE] = { "charge_capture",
		"SELECT outcome, status_code, body FROM capture_charge("
		"p_user_id => $1, p_key => $2, p_fingerprint => $3, p_ttl_ms => $4, p_wait_ms => $5,"
		" p_charge_id => $6, p_amount => $7, p_event_id => $8, p_request_id => $9)", 9 },
	[DB_STMT_CHARGE_UPDATE] = { "charge_update",
		"SELECT outcome, status_code, body FROM update_charge("
		"p_user_id => $1, p_key => $2, p_fingerprint => $3, p_ttl_ms => $4, p_wait_ms => $5,"
		" p_charge_id => $6, p_description => $7, p_metadata => $8::json,"
		" p_metadata_max => $9::integer, p_event_id => $10, p_request_id => $11)", 11 },
	[DB_STMT_REFUND_UPDATE] = { "refund_update",
		"SELECT outcome, status_code, body FROM update_refund("
		"p_user_id => $1, p_key => $2, p_fingerprint => $3, p_ttl_ms => $4, p_wait_ms => $5,"
		" p_refund_id => $6, p_metadata => $7::json, p_metadata_max => $8::integer,"
		" p_event_id => $9, p_request_id => $10)", 10 },
	[DB_STMT_CHARGE_EXPIRE] = { "charge_expire",
		/* Small batches, skipping rows a capture or refund holds right now. */
		"SELECT expire_authorizations(p_ttl_ms => $1, p_batch => $2)", 2 },
	/* Processor mode (0060): db_processor.c. */
	[DB_STMT_PROCESSOR_CREATE] = { "processor_create",
		"SELECT outcome, status_code, body FROM create_charge_pending("
		"p_user_id => $1, p_key => $2, p_fingerprint => $3, p_ttl_ms => $4, p_wait_ms => $5,"
		" p_charge_id => $6, p_event_id => $7, p_amount => $8, p_currency => $9,"
		" p_source => $10, p_description => $11, p_metadata => $12, p_request_id => $13)", 13 },
	[DB_STMT_PROCESSOR_CLAIM] = { "processor_claim",
		"SELECT charge_id, user_id, amount, currency, source, description, metadata, attempts,"
		" age_ms, flagged FROM processor_claim(p_batch => $1, p_lease_ms => $2)", 2 },
	[DB_STMT_PROCESSOR_RESOLVE] = { "processor_resolve",
		"SELECT processor_resolve(p_charge_id => $1, p_status => $2, p_failure_code => $3,"
		" p_decline_code => $4, p_processor_ref => $5, p_event_id => $6)", 6 },
	[DB_STMT_PROCESSOR_DEFER] = { "processor_defer",
		"SELECT processor_defer(p_charge_id => $1, p_delay_ms => $2, p_error => $3,"
		" p_max_wait_ms => $4, p_event_id => $5)::text", 5 },
	[DB_STMT_PROCESSOR_STATUS] = { "processor_status",
		/* A charge is pending exactly while its job exists: the small table is read. */
		"SELECT count(*), coalesce(extract(epoch FROM now() - min(j.created)), 0)::float8,"
		" count(*) FILTER (WHERE c.review_required_at IS NOT NULL)"
		" FROM processor_jobs j JOIN charges c ON c.id = j.charge_id", 0 },
	[DB_STMT_PROCESSOR_OURS] = { "processor_ours",
		/* Reconcile: the period's processor-mode charges, and any the processor names. */
		"SELECT id, status, amount, coalesce(processor_ref, '') FROM charges"
		" WHERE via_processor AND (created >= to_timestamp($1::bigint)"
		"  OR id IN (SELECT json_array_elements_text($2::json)))", 2 },
};
