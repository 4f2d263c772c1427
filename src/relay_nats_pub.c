/* relay_nats_pub.c - publishing events to NATS JetStream (libnats): the stream, subjects, ids and acks. */
#include "relay_nats_pub.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "err.h"
#include "log.h"

#define RELAY_NATS_PUB_MAX_SERVERS 16
#define RELAY_NATS_PUB_NS_PER_MS 1000000LL

struct relay_nats_pub {
	natsConnection *nc;
	jsCtx *js;
	char stream[RELAY_NATS_PUB_STREAM_MAX + 1];
	char prefix[RELAY_NATS_PUB_PREFIX_MAX + 1];
	/*
	 * The batch being acknowledged. libnats calls relay_nats_pub_on_ack on its own
	 * thread, so the batch, the search hint and error are read and written
	 * under lock; batch is NULL between calls, and late acks are ignored.
	 */
	pthread_mutex_t lock;
	struct relay_nats_pub_msg *batch;
	int batch_n;
	int hint;
	char error[RELAY_NATS_PUB_ERROR_MAX];
};

/* --- pure helpers --- */

/* True for a character allowed in a subject token or a stream name. */
static bool relay_nats_pub_plain_char(char c, const char *forbidden)
{
	return c > ' ' && c < 127 && strchr(forbidden, c) == NULL;
}

bool relay_nats_pub_valid_stream(const char *name)
{
	size_t i, len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > RELAY_NATS_PUB_STREAM_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (!relay_nats_pub_plain_char(name[i], ".*>/\\"))
			return false;
	}
	return true;
}

/* Dot-separated non-empty tokens of plain characters, at most max long. */
static bool relay_nats_pub_valid_tokens(const char *s, size_t max)
{
	size_t i, len = s != NULL ? strlen(s) : 0;

	if (len == 0 || len > max || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!relay_nats_pub_plain_char(s[i], "*>")) {
			return false;
		}
	}
	return true;
}

bool relay_nats_pub_valid_prefix(const char *prefix)
{
	return relay_nats_pub_valid_tokens(prefix, RELAY_NATS_PUB_PREFIX_MAX);
}

int relay_nats_pub_subject(const char *prefix, const char *type, char *buf, size_t size)
{
	int n;

	if (!relay_nats_pub_valid_prefix(prefix) || !relay_nats_pub_valid_tokens(type, RELAY_NATS_PUB_SUBJECT_MAX))
		return PAY_EPARAM_INVALID;
	n = snprintf(buf, size, "%s.%s", prefix, type);
	return n > 0 && (size_t)n < size ? PAY_OK : PAY_EPARAM_INVALID;
}

long long relay_nats_pub_republish_bound_ms(long long lease_ms)
{
	long long held = lease_ms > RELAY_NATS_PUB_ACK_WAIT_MS ? lease_ms : RELAY_NATS_PUB_ACK_WAIT_MS;

	return held + RELAY_NATS_PUB_RETRY_MAX_MS;
}

long long relay_nats_pub_retry_delay_ms(int failures, uint32_t rnd)
{
	long long d = RELAY_NATS_PUB_RETRY_MIN_MS;
	int i;

	for (i = 1; i < failures && d < RELAY_NATS_PUB_RETRY_MAX_MS; i++)
		d *= 2;
	if (d > RELAY_NATS_PUB_RETRY_MAX_MS)
		d = RELAY_NATS_PUB_RETRY_MAX_MS;
	/* Jitter only downwards, so the cap stays the cap the duplicate window is checked against. */
	return d - d / 5 * (long long)(rnd % 1001) / 1000;
}

/* --- the connection --- */

/* Formats "what: libnats' last error" into err. */
static void relay_nats_pub_describe(char *err, size_t errlen, const char *what, natsStatus s)
{
	natsStatus last = NATS_OK;
	const char *text = nats_GetLastError(&last);

	snprintf(err, errlen, "%s: %s", what,
		 text != NULL && *text != '\0' ? text : natsStatus_GetText(s));
}

/*
 * The acknowledgement callback, on a libnats thread: records which event of
 * the current batch the stream holds, or the first error. Owns msg.
 */
static void relay_nats_pub_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct relay_nats_pub *np = closure;
	const char *id = NULL;
	int i, k;

	(void)js;
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
		id = NULL;
	pthread_mutex_lock(&np->lock);
	for (k = 0; id != NULL && np->batch != NULL && k < np->batch_n; k++) {
		/* Acks mostly arrive in publish order: start after the last one found. */
		i = (np->hint + k) % np->batch_n;
		if (strcmp(np->batch[i].event_id, id) != 0)
			continue;
		np->hint = i + 1;
		if (pa != NULL) {
			np->batch[i].acked = true;
			np->batch[i].duplicate = pa->Duplicate;
		}
		break;
	}
	if (pa == NULL && np->batch != NULL && np->error[0] == '\0') {
		if (pae != NULL && pae->ErrCode != 0)
			snprintf(np->error, sizeof(np->error), "publish of %s refused by JetStream: %s "
				 "(error code %d)", id != NULL ? id : "?",
				 pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err),
				 (int)pae->ErrCode);
		else if (pae != NULL)
			snprintf(np->error, sizeof(np->error), "publish of %s failed: %s",
				 id != NULL ? id : "?", natsStatus_GetText(pae->Err));
		else
			snprintf(np->error, sizeof(np->error), "publish of %s: no acknowledgement",
				 id != NULL ? id : "?");
	}
	pthread_mutex_unlock(&np->lock);
	natsMsg_Destroy(msg);
}

/* Sets opts' servers from a comma-separated list. */
static natsStatus relay_nats_pub_set_servers(natsOptions *opts, const char *url)
{
	const char *servers[RELAY_NATS_PUB_MAX_SERVERS];
	char *copy = strdup(url), *save = NULL, *tok;
	int n = 0;
	natsStatus s;

	if (copy == NULL)
		return NATS_NO_MEMORY;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL && n < RELAY_NATS_PUB_MAX_SERVERS;
	     tok = strtok_r(NULL, ", ", &save))
		servers[n++] = tok;
	s = n > 0 ? natsOptions_SetServers(opts, servers, n) : NATS_INVALID_ARG;
	free(copy);
	return s;
}

/* True when the stream's subjects include subject exactly. */
static bool relay_nats_pub_has_subject(const jsStreamConfig *c, const char *subject)
{
	int i;

	for (i = 0; i < c->SubjectsLen; i++) {
		if (c->Subjects[i] != NULL && strcmp(c->Subjects[i], subject) == 0)
			return true;
	}
	return false;
}

/* Creates the stream, or checks it and raises its duplicate window. See relay_nats_pub_create. */
static int relay_nats_pub_ensure_stream(struct relay_nats_pub *np, long long window_ms, char *err, size_t errlen)
{
	char subject[RELAY_NATS_PUB_SUBJECT_MAX];
	const char *subjects[1] = { subject };
	int64_t window_ns = (int64_t)window_ms * RELAY_NATS_PUB_NS_PER_MS;
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus s;
	int rc = PAY_EUNAVAILABLE;

	snprintf(subject, sizeof(subject), "%s.>", np->prefix);
	s = js_GetStreamInfo(&si, np->js, np->stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		jsStreamConfig_Init(&sc);
		sc.Name = np->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Duplicates = window_ns;
		jerr = 0;
		s = js_AddStream(NULL, np->js, &sc, NULL, &jerr);
		if (s != NATS_OK) {
			relay_nats_pub_describe(err, errlen, "cannot create the stream", s);
			/* The server refused the configuration (e.g. subjects another stream holds). */
			rc = jerr != 0 ? PAY_ECONFIG : PAY_EUNAVAILABLE;
			goto out;
		}
		log_write(LOG_INFO, "created the NATS stream",
			  json_pack("{s:s, s:s, s:I}", "stream", np->stream, "subjects", subject,
				    "duplicate_window_ms", (json_int_t)window_ms));
		rc = PAY_OK;
		goto out;
	}
	if (s != NATS_OK) {
		relay_nats_pub_describe(err, errlen, "cannot read the stream (is JetStream enabled?)", s);
		goto out;
	}
	if (!relay_nats_pub_has_subject(si->Config, subject) || si->Config->Storage != js_FileStorage) {
		snprintf(err, errlen, "stream %s exists without subject %s or without file storage",
			 np->stream, subject);
		rc = PAY_ECONFIG;
		goto out;
	}
	if (si->Config->Duplicates < window_ns) {
		sc = *si->Config;   /* a shallow copy: si owns the strings until it is destroyed */
		sc.Duplicates = window_ns;
		jerr = 0;
		s = js_UpdateStream(NULL, np->js, &sc, NULL, &jerr);
		if (s != NATS_OK) {
			relay_nats_pub_describe(err, errlen, "cannot raise the stream's duplicate window", s);
			rc = jerr != 0 ? PAY_ECONFIG : PAY_EUNAVAILABLE;
			goto out;
		}
		log_write(LOG_INFO, "raised the NATS stream's duplicate window",
			  json_pack("{s:s, s:I}", "stream", np->stream,
				    "duplicate_window_ms", (json_int_t)window_ms));
	}
	rc = PAY_OK;
out:
	jsStreamInfo_Destroy(si);
	return rc;
}

int relay_nats_pub_create(const char *url, const char *stream, const char *prefix, long long window_ms,
		   struct relay_nats_pub **out, char *err, size_t errlen)
{
	struct relay_nats_pub *np = calloc(1, sizeof(*np));
	natsOptions *opts = NULL;
	jsOptions jo;
	natsStatus s;
	int rc = PAY_ENOMEM;

	*out = NULL;
	snprintf(err, errlen, "out of memory");
	if (np == NULL)
		goto fail;
	pthread_mutex_init(&np->lock, NULL);
	snprintf(np->stream, sizeof(np->stream), "%s", stream);
	snprintf(np->prefix, sizeof(np->prefix), "%s", prefix);
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = relay_nats_pub_set_servers(opts, url);
	if (s == NATS_OK)
		s = natsOptions_SetName(opts, "payments-relay");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, RELAY_NATS_PUB_CONNECT_TIMEOUT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(opts, RELAY_NATS_PUB_CONNECT_TIMEOUT_MS);
	/* Reconnecting is the caller's job, after its own backoff, with a fresh stream check. */
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(opts, false);
	if (s != NATS_OK) {
		relay_nats_pub_describe(err, errlen, "invalid NATS options", s);
		rc = s == NATS_NO_MEMORY ? PAY_ENOMEM : PAY_ECONFIG;
		goto fail;
	}
	s = natsConnection_Connect(&np->nc, opts);
	if (s != NATS_OK) {
		relay_nats_pub_describe(err, errlen, "cannot connect to NATS", s);
		rc = PAY_EUNAVAILABLE;
		goto fail;
	}
	jsOptions_Init(&jo);
	jo.Wait = RELAY_NATS_PUB_ACK_WAIT_MS;
	jo.PublishAsync.AckHandler = relay_nats_pub_on_ack;
	jo.PublishAsync.AckHandlerClosure = np;
	s = natsConnection_JetStream(&np->js, np->nc, &jo);
	if (s != NATS_OK) {
		relay_nats_pub_describe(err, errlen, "cannot use JetStream", s);
		rc = PAY_EUNAVAILABLE;
		goto fail;
	}
	rc = relay_nats_pub_ensure_stream(np, window_ms, err, errlen);
	if (rc != PAY_OK)
		goto fail;
	natsOptions_Destroy(opts);
	err[0] = '\0';
	*out = np;   /* ownership passes to the caller */
	return PAY_OK;
fail:
	natsOptions_Destroy(opts);
	relay_nats_pub_destroy(np);
	return rc;
}

void relay_nats_pub_destroy(struct relay_nats_pub *np)
{
	if (np == NULL)
		return;
	/* Closing first stops the acknowledgement callbacks before the context goes. */
	if (np->nc != NULL)
		natsConnection_Close(np->nc);
	jsCtx_Destroy(np->js);
	natsConnection_Destroy(np->nc);
	pthread_mutex_destroy(&np->lock);
	free(np);
}

bool relay_nats_pub_connected(struct relay_nats_pub *np)
{
	return np->nc != NULL && natsConnection_Status(np->nc) == NATS_CONN_STATUS_CONNECTED;
}

const char *relay_nats_pub_error(struct relay_nats_pub *np)
{
	return np->error;
}

void relay_nats_pub_shutdown(void)
{
	nats_Close();
}

/*
 * Takes back the messages still waiting for an acknowledgement, so that no
 * callback of this batch runs after relay_nats_pub_publish returns, then waits a
 * little for callbacks already running.
 */
static void relay_nats_pub_abandon(struct relay_nats_pub *np)
{
	natsMsgList pending;
	jsPubOptions po;

	memset(&pending, 0, sizeof(pending));
	if (js_PublishAsyncGetPendingList(&pending, np->js) == NATS_OK)
		natsMsgList_Destroy(&pending);
	jsPubOptions_Init(&po);
	po.MaxWait = 1000;
	(void)js_PublishAsyncComplete(np->js, &po);
}

int relay_nats_pub_publish(struct relay_nats_pub *np, struct relay_nats_pub_msg *msgs, int n)
{
	char subject[RELAY_NATS_PUB_SUBJECT_MAX];
	natsMsg *m = NULL;
	jsPubOptions po;
	natsStatus s = NATS_OK;
	int i, sent = 0, acked = 0;

	pthread_mutex_lock(&np->lock);
	np->error[0] = '\0';
	np->batch = msgs;
	np->batch_n = n;
	np->hint = 0;
	for (i = 0; i < n; i++)
		msgs[i].acked = msgs[i].duplicate = false;
	pthread_mutex_unlock(&np->lock);

	jsPubOptions_Init(&po);
	po.MaxWait = RELAY_NATS_PUB_ACK_WAIT_MS;   /* each message times out by itself */
	po.ExpectStream = np->stream;       /* stored by another stream is a failure */
	for (i = 0; i < n; i++) {
		if (relay_nats_pub_subject(np->prefix, msgs[i].type, subject, sizeof(subject)) != PAY_OK) {
			pthread_mutex_lock(&np->lock);
			if (np->error[0] == '\0')
				snprintf(np->error, sizeof(np->error), "event %s: type '%s' is not a subject",
					 msgs[i].event_id, msgs[i].type);
			pthread_mutex_unlock(&np->lock);
			continue;
		}
		s = natsMsg_Create(&m, subject, NULL, msgs[i].body, (int)msgs[i].body_len);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", msgs[i].event_id);
		if (s == NATS_OK)
			s = js_PublishMsgAsync(np->js, &m, &po);   /* on success m is NULL: libnats owns it */
		natsMsg_Destroy(m);
		m = NULL;
		if (s != NATS_OK)
			break;
		sent++;
	}
	if (s != NATS_OK) {
		pthread_mutex_lock(&np->lock);
		if (np->error[0] == '\0')
			relay_nats_pub_describe(np->error, sizeof(np->error), "cannot publish", s);
		pthread_mutex_unlock(&np->lock);
	}
	if (sent > 0) {
		jsPubOptions_Init(&po);
		po.MaxWait = RELAY_NATS_PUB_ACK_WAIT_MS + 1000;
		if (js_PublishAsyncComplete(np->js, &po) != NATS_OK)
			relay_nats_pub_abandon(np);
	}

	pthread_mutex_lock(&np->lock);
	np->batch = NULL;
	for (i = 0; i < n; i++)
		acked += msgs[i].acked;
	if (acked < n && np->error[0] == '\0')
		snprintf(np->error, sizeof(np->error), "%d of %d events not acknowledged in time",
			 n - acked, n);
	pthread_mutex_unlock(&np->lock);
	return acked == n ? PAY_OK : PAY_EUNAVAILABLE;
}
