/* http_deadline.c - the whole-request deadline: a watchdog that cuts off a request still reading past it. */
#include "http_deadline.h"

#include <dirent.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <civetweb.h>

/*
 * civetweb gives each read its own timeout but no read a deadline: a body
 * trickled one byte just inside each read's timeout keeps a worker thread
 * for as long as the client likes. Each body read is therefore watched:
 * once its request's deadline passes, its socket is shut down for reading,
 * which wakes civetweb's blocked poll, and the read returns short.
 */
struct http_deadline_slot {
	int fd;
	long long at_ms;
	bool used;
	bool fired;
};

struct http_deadline {
	pthread_mutex_t lock;
	pthread_cond_t cv;       /* on CLOCK_MONOTONIC */
	pthread_t thread;
	bool stop;
	long long wake_ms;       /* when the watchdog's wait ends: -1 none, 0 it is not waiting */
	int nslots;
	struct http_deadline_slot *slots;
};

long long http_deadline_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *http_deadline_main(void *arg)
{
	struct http_deadline *d = arg;
	struct timespec at;
	long long now, next;
	int i;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		now = http_deadline_now_ms();
		next = -1;
		for (i = 0; i < d->nslots; i++) {
			struct http_deadline_slot *s = &d->slots[i];

			if (!s->used || s->fired)
				continue;
			if (s->at_ms <= now) {
				/* The fd stays open while armed: its reader disarms before the connection closes. */
				shutdown(s->fd, SHUT_RD);
				s->fired = true;
			} else if (next < 0 || s->at_ms < next) {
				next = s->at_ms;
			}
		}
		d->wake_ms = next;
		if (next < 0) {
			pthread_cond_wait(&d->cv, &d->lock);
		} else {
			at.tv_sec = next / 1000;
			at.tv_nsec = (next % 1000) * 1000000L;
			pthread_cond_timedwait(&d->cv, &d->lock, &at);
		}
		d->wake_ms = 0;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

struct http_deadline *http_deadline_create(int nslots)
{
	struct http_deadline *d = calloc(1, sizeof(*d));
	pthread_condattr_t attr;

	if (d == NULL)
		goto fail;
	d->nslots = nslots;
	d->slots = calloc((size_t)nslots, sizeof(*d->slots));
	if (d->slots == NULL)
		goto fail_slots;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&d->thread, NULL, http_deadline_main, d) != 0)
		goto fail_thread;
	return d;
fail_thread:
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->lock);
fail_slots:
	free(d->slots);
	free(d);
fail:
	return NULL;
}

void http_deadline_destroy(struct http_deadline *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->lock);
	free(d->slots);
	free(d);
}

int http_deadline_arm(struct http_deadline *d, int fd, long long at_ms)
{
	int i, slot = -1;

	if (d == NULL || fd < 0)
		return -1;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nslots && slot < 0; i++) {
		if (!d->slots[i].used)
			slot = i;
	}
	if (slot >= 0) {
		d->slots[slot] = (struct http_deadline_slot){ fd, at_ms, true, false };
		/*
		 * Wake the watchdog only when this deadline comes before the end of
		 * its wait. Every request arms one, almost always later than one
		 * already armed; the watchdog finds it when its wait ends anyway, and
		 * waking it for nothing cost a thread switch per request.
		 */
		if (d->wake_ms < 0 || at_ms < d->wake_ms)
			pthread_cond_signal(&d->cv);
	}
	pthread_mutex_unlock(&d->lock);
	return slot;
}

bool http_deadline_disarm(struct http_deadline *d, int slot)
{
	bool fired;

	if (d == NULL || slot < 0 || slot >= d->nslots)
		return false;
	pthread_mutex_lock(&d->lock);
	fired = d->slots[slot].fired;
	d->slots[slot].used = false;
	pthread_mutex_unlock(&d->lock);
	return fired;
}

int http_deadline_conn_open(const struct mg_connection *conn, void **conn_data)
{
	struct http_conn_state *c = malloc(sizeof(*c));

	(void)conn;
	if (c != NULL)
		*c = (struct http_conn_state){ .opened_ms = http_deadline_now_ms(), .fd = -1 };
	*conn_data = c;
	return 0;
}

void http_deadline_conn_close(const struct mg_connection *conn)
{
	struct http_conn_state *c = mg_get_user_connection_data(conn);

	mg_set_user_connection_data(conn, NULL);
	free(c);
}

struct http_conn_state *http_deadline_conn_state(const struct mg_connection *conn)
{
	return mg_get_user_connection_data(conn);
}

/* The port and textual address of a socket name, or -1. */
static int http_deadline_name(const struct sockaddr_storage *ss, char *ip, size_t iplen)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, (socklen_t)iplen);
		return ntohs(a->sin_port);
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, (socklen_t)iplen);
		return ntohs(a->sin6_port);
	}
	return -1;
}

/*
 * civetweb does not hand out a connection's socket: finds it among the
 * process's descriptors as the one whose local port is the request's
 * listening port and whose peer is the request's client. Once per
 * connection (the result is kept with it).
 */
static int http_deadline_find_socket(const struct mg_request_info *ri)
{
	struct sockaddr_storage ss;
	char ip[INET6_ADDRSTRLEN];
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	socklen_t len;
	int fd, found = -1;

	if (dir == NULL)
		return -1;
	while (found < 0 && (e = readdir(dir)) != NULL) {
		fd = atoi(e->d_name);
		if (fd <= 2 || fd == dirfd(dir))
			continue;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
		    http_deadline_name(&ss, ip, sizeof(ip)) != ri->server_port)
			continue;
		len = sizeof(ss);
		if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
		    http_deadline_name(&ss, ip, sizeof(ip)) != ri->remote_port)
			continue;
		/* civetweb writes an IPv4 peer of a dual-stack socket as plain IPv4. */
		if (strcmp(ip, ri->remote_addr) == 0 ||
		    (strncmp(ip, "::ffff:", 7) == 0 && strcmp(ip + 7, ri->remote_addr) == 0))
			found = fd;
	}
	closedir(dir);
	return found;
}

int http_deadline_conn_fd(const struct mg_connection *conn, const struct mg_request_info *ri)
{
	struct http_conn_state *c = mg_get_user_connection_data(conn);

	if (ri == NULL)
		return -1;
	if (c == NULL)
		return http_deadline_find_socket(ri);
	if (c->fd < 0)
		c->fd = http_deadline_find_socket(ri);
	return c->fd;
}

int http_deadline_conn_socket(struct mg_connection *conn, long long fallback_ms, long long *start_ms)
{
	struct http_conn_state *c = mg_get_user_connection_data(conn);

	*start_ms = c != NULL && c->requests == 0 ? c->opened_ms : fallback_ms;
	return http_deadline_conn_fd(conn, mg_get_request_info(conn));
}

void http_deadline_conn_request_done(struct mg_connection *conn)
{
	struct http_conn_state *c = mg_get_user_connection_data(conn);

	if (c != NULL)
		c->requests++;
}
