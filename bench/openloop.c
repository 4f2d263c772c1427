/* openloop.c - an open-loop HTTP load generator: sends at a fixed rate and times each request from its intended send time. */
/*
 * wrk is closed-loop: a slow response delays the next request, so a stalled
 * server also stalls the load and hides its own tail. Here request i is due
 * at t0 + i / rate whatever happened before; its latency is the time from
 * then to its complete response. A request that finds every connection busy
 * waits for one, and that wait counts too (coordinated omission stays in the
 * figures, where it belongs).
 *
 * Usage:
 *   openloop --url http://127.0.0.1:8080/v1/charges --rate 500 (--duration 10 | --requests N)
 *            [--connections 16] [--header 'Authorization: Bearer sk_...']... [--body JSON]
 *            [--key-prefix PREFIX] [--timeout-ms 5000] [--expect 201]
 *
 * Each request is a POST (a GET without --body) with "Idempotency-Key:
 * PREFIX<i>" when --key-prefix is given, i = 0, 1, ... Keep-alive
 * connections, one request in flight on each. Prints one JSON line:
 * sent, ok (status == --expect), errors (other statuses, resets, timeouts,
 * requests never sent), achieved rate and latency percentiles in ms.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define OL_MAX_HEADERS 16
#define OL_OUT_MAX 8192
#define OL_IN_MAX 65536
#define OL_TIMER_TAG UINT64_MAX

enum ol_state { OL_CLOSED, OL_CONNECTING, OL_IDLE, OL_BUSY };

struct ol_conn {
	int fd;
	enum ol_state state;
	char out[OL_OUT_MAX];
	size_t out_len, out_off;
	char in[OL_IN_MAX];
	size_t in_len;
	long long req;          /* index of the request in flight */
	int64_t sent_ns;        /* when it was written: for the timeout */
};

struct ol_opts {
	const char *host, *port, *path;
	double rate;
	double duration_s;
	long long requests;
	int connections;
	const char *headers[OL_MAX_HEADERS];
	int nheaders;
	const char *body;
	const char *key_prefix;
	long long timeout_ms;
	int expect;
};

struct ol_stats {
	long long sent, ok, status_errors, io_errors, timeouts, unsent;
	int64_t *lat_ns;        /* one per completed request, ok or not */
	long long nlat;
};

static int64_t ol_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void ol_usage(void)
{
	fprintf(stderr, "usage: openloop --url http://HOST:PORT/PATH --rate R (--duration S | --requests N)\n"
			"                [--connections C] [--header 'Name: value']... [--body JSON]\n"
			"                [--key-prefix P] [--timeout-ms MS] [--expect STATUS]\n");
}

/* Splits http://host:port/path into o->host, o->port and o->path (pointing into static copies). */
static int ol_parse_url(struct ol_opts *o, const char *url)
{
	static char hostport[256], path[512];
	const char *slash;
	char *colon;
	size_t hlen;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	url += 7;
	slash = strchr(url, '/');
	hlen = slash ? (size_t)(slash - url) : strlen(url);
	if (hlen == 0 || hlen >= sizeof(hostport) || (slash && strlen(slash) >= sizeof(path)))
		return -1;
	memcpy(hostport, url, hlen);
	hostport[hlen] = '\0';
	snprintf(path, sizeof(path), "%s", slash ? slash : "/");
	colon = strrchr(hostport, ':');
	o->port = "80";
	if (colon != NULL) {
		*colon = '\0';
		o->port = colon + 1;
	}
	o->host = hostport;
	o->path = path;
	return 0;
}

static int ol_parse_args(struct ol_opts *o, int argc, char **argv)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->connections = 16;
	o->timeout_ms = 5000;
	o->expect = 201;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return -1;
		if (strcmp(a, "--url") == 0 && ol_parse_url(o, v) == 0)
			;
		else if (strcmp(a, "--rate") == 0)
			o->rate = atof(v);
		else if (strcmp(a, "--duration") == 0)
			o->duration_s = atof(v);
		else if (strcmp(a, "--requests") == 0)
			o->requests = atoll(v);
		else if (strcmp(a, "--connections") == 0)
			o->connections = atoi(v);
		else if (strcmp(a, "--header") == 0 && o->nheaders < OL_MAX_HEADERS)
			o->headers[o->nheaders++] = v;
		else if (strcmp(a, "--body") == 0)
			o->body = v;
		else if (strcmp(a, "--key-prefix") == 0)
			o->key_prefix = v;
		else if (strcmp(a, "--timeout-ms") == 0)
			o->timeout_ms = atoll(v);
		else if (strcmp(a, "--expect") == 0)
			o->expect = atoi(v);
		else
			return -1;
		i++;
	}
	if (o->host == NULL || o->rate <= 0 || o->connections < 1 || o->timeout_ms < 1)
		return -1;
	if (o->requests <= 0)
		o->requests = (long long)(o->rate * o->duration_s);
	return o->requests > 0 ? 0 : -1;
}

/* Starts a non-blocking connect of c to addr. Returns 0 or -1. */
static int ol_connect(struct ol_conn *c, int ep, const struct addrinfo *addr, int index)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)index };
	int one = 1;

	c->fd = socket(addr->ai_family, addr->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) < 0 && errno != EINPROGRESS)
		goto fail;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		goto fail;
	c->state = OL_CONNECTING;
	c->in_len = 0;
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	c->state = OL_CLOSED;
	return -1;
}

static void ol_close(struct ol_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);   /* closing also removes it from the epoll set */
	c->fd = -1;
	c->state = OL_CLOSED;
	c->in_len = 0;
}

/* Formats request i into c->out and starts writing it. Returns 0 or -1 (the request is lost). */
static int ol_send(struct ol_conn *c, const struct ol_opts *o, long long i, int64_t now)
{
	size_t blen = o->body ? strlen(o->body) : 0;
	int n, k;

	n = snprintf(c->out, sizeof(c->out), "%s %s HTTP/1.1\r\nHost: %s:%s\r\n",
		     o->body ? "POST" : "GET", o->path, o->host, o->port);
	for (k = 0; k < o->nheaders && n > 0 && (size_t)n < sizeof(c->out); k++)
		n += snprintf(c->out + n, sizeof(c->out) - (size_t)n, "%s\r\n", o->headers[k]);
	if (o->key_prefix != NULL && n > 0 && (size_t)n < sizeof(c->out))
		n += snprintf(c->out + n, sizeof(c->out) - (size_t)n, "Idempotency-Key: %s%lld\r\n",
			      o->key_prefix, i);
	if (o->body != NULL && n > 0 && (size_t)n < sizeof(c->out))
		n += snprintf(c->out + n, sizeof(c->out) - (size_t)n,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			      blen, o->body);
	else if (n > 0 && (size_t)n < sizeof(c->out))
		n += snprintf(c->out + n, sizeof(c->out) - (size_t)n, "\r\n");
	if (n <= 0 || (size_t)n >= sizeof(c->out))
		return -1;
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->req = i;
	c->sent_ns = now;
	c->state = OL_BUSY;
	c->in_len = 0;
	return 0;
}

/* Writes what is left of c->out. Returns 0, or -1 when the connection broke. */
static int ol_flush(struct ol_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->out_off += (size_t)w;
	}
	return 0;
}

/*
 * Looks for one complete response in c->in. Returns 1 with *status set when
 * there is one (and *close_after when the server will close), 0 when more
 * bytes are needed, -1 when it cannot be parsed.
 */
static int ol_parse_response(struct ol_conn *c, int *status, bool *close_after)
{
	char *end, *line;
	size_t head_len;
	long long clen = -1;

	if (c->in_len < 12)
		return 0;
	c->in[c->in_len < sizeof(c->in) ? c->in_len : sizeof(c->in) - 1] = '\0';
	end = strstr(c->in, "\r\n\r\n");
	if (end == NULL)
		return c->in_len >= sizeof(c->in) - 1 ? -1 : 0;
	head_len = (size_t)(end - c->in) + 4;
	if (strncmp(c->in, "HTTP/1.", 7) != 0)
		return -1;
	*status = atoi(c->in + 9);
	*close_after = false;
	for (line = strstr(c->in, "\r\n"); line != NULL && line < end; line = strstr(line + 2, "\r\n")) {
		if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
			clen = atoll(line + 17);
		else if (strncasecmp(line + 2, "Connection: close", 17) == 0)
			*close_after = true;
	}
	if (clen < 0)
		return -1;   /* our servers always send Content-Length */
	if (head_len + (size_t)clen > sizeof(c->in) - 1)
		return -1;
	return c->in_len >= head_len + (size_t)clen ? 1 : 0;
}

static int ol_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double ol_pct_ms(const struct ol_stats *s, double p)
{
	long long k;

	if (s->nlat == 0)
		return 0;
	k = (long long)(p / 100.0 * (double)s->nlat + 0.5) - 1;
	if (k < 0)
		k = 0;
	if (k >= s->nlat)
		k = s->nlat - 1;
	return (double)s->lat_ns[k] / 1e6;
}

/* Arms the timer for absolute monotonic time at_ns (0: disarmed). */
static void ol_arm(int tfd, int64_t at_ns)
{
	struct itimerspec its = { 0 };

	if (at_ns > 0) {
		its.it_value.tv_sec = at_ns / 1000000000;
		its.it_value.tv_nsec = at_ns % 1000000000;
	}
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *addr = NULL;
	struct epoll_event ev, evs[256];
	struct ol_stats st = { 0 };
	struct ol_conn *conns = NULL;
	struct ol_opts o;
	int64_t t0, interval_ns, now, end_ns = 0, last_due_ns;
	long long next = 0, done = 0;
	int ep = -1, tfd = -1, i, n, code = 2;

	signal(SIGPIPE, SIG_IGN);
	if (ol_parse_args(&o, argc, argv) != 0) {
		ol_usage();
		return 2;
	}
	if (getaddrinfo(o.host, o.port, &hints, &addr) != 0) {
		fprintf(stderr, "openloop: cannot resolve %s\n", o.host);
		goto out;
	}
	conns = calloc((size_t)o.connections, sizeof(*conns));
	st.lat_ns = calloc((size_t)o.requests, sizeof(*st.lat_ns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (conns == NULL || st.lat_ns == NULL || ep < 0 || tfd < 0)
		goto out;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = OL_TIMER_TAG };
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	for (i = 0; i < o.connections; i++) {
		conns[i].fd = -1;
		if (ol_connect(&conns[i], ep, addr, i) != 0) {
			fprintf(stderr, "openloop: cannot connect to %s:%s\n", o.host, o.port);
			goto out;
		}
	}

	interval_ns = (int64_t)(1e9 / o.rate);
	/* Let the connections open before the clock starts. */
	t0 = ol_now_ns() + 50000000;
	last_due_ns = t0 + (o.requests - 1) * interval_ns;
	while (done < o.requests) {
		long long due;

		now = ol_now_ns();
		/* Give up on responses that take too long: the request failed, the connection is reset. */
		for (i = 0; i < o.connections; i++) {
			struct ol_conn *c = &conns[i];

			if (c->state == OL_BUSY && now - c->sent_ns > o.timeout_ms * 1000000) {
				/* Counted at the time it was given up on: a lower bound of its latency. */
				st.lat_ns[st.nlat++] = now - (t0 + c->req * interval_ns);
				st.timeouts++;
				done++;
				ol_close(c);
			}
			if (c->state == OL_CLOSED && next < o.requests)
				ol_connect(c, ep, addr, i);
		}
		/* Send every request that is due, as long as a connection is free. */
		due = now < t0 ? 0 : (now - t0) / interval_ns + 1;
		if (due > o.requests)
			due = o.requests;
		for (i = 0; i < o.connections && next < due; i++) {
			struct ol_conn *c = &conns[i];

			if (c->state != OL_IDLE)
				continue;
			if (ol_send(c, &o, next, now) != 0 || ol_flush(c) != 0) {
				st.io_errors++;
				done++;
				ol_close(c);
			}
			st.sent++;
			next++;
		}
		if (next >= o.requests && end_ns == 0)
			end_ns = now + o.timeout_ms * 1000000;
		if (end_ns != 0 && now > end_ns)
			break;
		/* Wake for the next due request, or in 10 ms to check timeouts. */
		ol_arm(tfd, next < due ? now + 10000000 :
			    next < o.requests ? t0 + next * interval_ns : now + 10000000);
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			struct ol_conn *c;
			uint64_t ticks;
			int status;
			bool close_after;

			if (evs[i].data.u64 == OL_TIMER_TAG) {
				if (read(tfd, &ticks, sizeof(ticks)) < 0)
					continue;
				continue;
			}
			c = &conns[evs[i].data.u64];
			if (c->fd < 0)
				continue;
			if (c->state == OL_CONNECTING) {
				int err = 0;
				socklen_t len = sizeof(err);

				if (evs[i].events & (EPOLLERR | EPOLLHUP) ||
				    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
					ol_close(c);
					continue;
				}
				c->state = OL_IDLE;
				ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = evs[i].data.u64 };
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (c->state == OL_BUSY && c->out_off < c->out_len && ol_flush(c) != 0)
				goto broken;
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			for (;;) {
				ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);

				if (r == 0 || (r < 0 && errno != EAGAIN))
					goto broken;
				if (r < 0)
					break;
				c->in_len += (size_t)r;
				if (c->in_len >= sizeof(c->in) - 1)
					break;
			}
			if (c->state != OL_BUSY) {
				c->in_len = 0;   /* nothing was asked: ignore */
				continue;
			}
			switch (ol_parse_response(c, &status, &close_after)) {
			case 0:
				continue;
			case 1:
				st.lat_ns[st.nlat++] = ol_now_ns() - (t0 + c->req * interval_ns);
				if (status == o.expect)
					st.ok++;
				else
					st.status_errors++;
				done++;
				c->state = OL_IDLE;
				c->in_len = 0;
				if (close_after)
					ol_close(c);
				continue;
			default:
				break;
			}
broken:
			if (c->state == OL_BUSY) {
				st.io_errors++;
				done++;
			}
			ol_close(c);
		}
	}
	now = ol_now_ns();
	st.unsent = o.requests - next;
	for (i = 0; i < o.connections; i++) {
		if (conns[i].state == OL_BUSY)
			st.timeouts++;
	}
	qsort(st.lat_ns, (size_t)st.nlat, sizeof(*st.lat_ns), ol_cmp_i64);
	printf("{\"rate\":%.1f,\"requests\":%lld,\"sent\":%lld,\"ok\":%lld,\"errors\":%lld,"
	       "\"status_errors\":%lld,\"io_errors\":%lld,\"timeouts\":%lld,\"unsent\":%lld,"
	       "\"achieved_rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
	       "\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
	       o.rate, o.requests, st.sent, st.ok,
	       o.requests - st.ok, st.status_errors, st.io_errors, st.timeouts, st.unsent,
	       (double)st.ok / ((double)(last_due_ns - t0 + interval_ns) / 1e9),
	       ol_pct_ms(&st, 50), ol_pct_ms(&st, 90), ol_pct_ms(&st, 99), ol_pct_ms(&st, 99.9),
	       st.nlat ? (double)st.lat_ns[st.nlat - 1] / 1e6 : 0.0);
	code = 0;
out:
	if (conns != NULL) {
		for (i = 0; i < o.connections; i++)
			ol_close(&conns[i]);
	}
	free(conns);
	free(st.lat_ns);
	if (tfd >= 0)
		close(tfd);
	if (ep >= 0)
		close(ep);
	if (addr != NULL)
		freeaddrinfo(addr);
	return code;
}
