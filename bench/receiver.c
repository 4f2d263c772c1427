/* receiver.c - a fast loopback webhook receiver for the benchmark: answers 200 and logs each webhook-id with its receive time. */
/*
 * Usage: receiver --listen 127.0.0.1:PORT --log FILE
 *
 * One thread, epoll, keep-alive: many thousand requests per second on one
 * core, so the relay's figures are the relay's. Every complete request is
 * answered "200 OK" with an empty body, and "<webhook-id>\t<unix time in
 * microseconds>\n" is appended to FILE (buffered; flushed every 100 ms and
 * on SIGTERM/SIGINT, when it exits). The commit-to-delivery lag is then the
 * receive time minus the event's created in outbox_events.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#define RCV_IN_MAX (256 * 1024)
#define RCV_MAX_FDS 4096

struct rcv_conn {
	char *in;
	size_t len;
};

static volatile sig_atomic_t rcv_stop;

static void rcv_on_signal(int sig)
{
	(void)sig;
	rcv_stop = 1;
}

static long long rcv_now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Opens a non-blocking listening socket on "ip:port". Returns the fd or -1. */
static int rcv_listen(const char *spec)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char ip[64];
	const char *colon = strrchr(spec, ':');
	int fd, one = 1;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(ip))
		return -1;
	memcpy(ip, spec, (size_t)(colon - spec));
	ip[colon - spec] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Copies the value of header name (case-insensitive) from the head into out. */
static void rcv_header(const char *head, const char *end, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name), k;
	const char *line;

	out[0] = '\0';
	for (line = strstr(head, "\r\n"); line != NULL && line < end; line = strstr(line + 2, "\r\n")) {
		const char *v = line + 2;

		if (strncasecmp(v, name, nlen) != 0 || v[nlen] != ':')
			continue;
		v += nlen + 1;
		while (*v == ' ')
			v++;
		for (k = 0; k + 1 < cap && v[k] != '\r' && v[k] != '\0'; k++)
			out[k] = v[k];
		out[k] = '\0';
		return;
	}
}

/*
 * Answers every complete request in c->in and logs it. Returns 0, or -1
 * when the connection must be closed (a malformed or oversized request).
 */
static int rcv_serve(int fd, struct rcv_conn *c, FILE *log, long long *count)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	char id[128], clen_s[32];

	for (;;) {
		char *end;
		size_t head_len, total;
		long long clen;

		c->in[c->len] = '\0';
		end = strstr(c->in, "\r\n\r\n");
		if (end == NULL)
			return c->len >= RCV_IN_MAX - 1 ? -1 : 0;
		head_len = (size_t)(end - c->in) + 4;
		rcv_header(c->in, end, "Content-Length", clen_s, sizeof(clen_s));
		clen = clen_s[0] ? atoll(clen_s) : 0;
		if (clen < 0 || head_len + (size_t)clen >= RCV_IN_MAX)
			return -1;
		total = head_len + (size_t)clen;
		if (c->len < total)
			return 0;
		rcv_header(c->in, end, "webhook-id", id, sizeof(id));
		fprintf(log, "%s\t%lld\n", id[0] ? id : "-", rcv_now_us());
		(*count)++;
		if (write(fd, ok, sizeof(ok) - 1) != (ssize_t)(sizeof(ok) - 1))
			return -1;   /* 38 bytes always fit an empty socket buffer; anything else is broken */
		memmove(c->in, c->in + total, c->len - total);
		c->len -= total;
	}
}

int main(int argc, char **argv)
{
	struct rcv_conn *conns = NULL;
	struct epoll_event ev, evs[256];
	const char *listen_spec = NULL, *log_path = NULL;
	long long count = 0, last_flush;
	FILE *log = NULL;
	int lfd = -1, ep = -1, i, n, code = 2;

	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--listen") == 0)
			listen_spec = argv[i + 1];
		else if (strcmp(argv[i], "--log") == 0)
			log_path = argv[i + 1];
	}
	if (listen_spec == NULL || log_path == NULL) {
		fprintf(stderr, "usage: receiver --listen IP:PORT --log FILE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, rcv_on_signal);
	signal(SIGINT, rcv_on_signal);
	log = fopen(log_path, "w");
	conns = calloc(RCV_MAX_FDS, sizeof(*conns));
	lfd = rcv_listen(listen_spec);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (log == NULL || conns == NULL || lfd < 0 || ep < 0) {
		fprintf(stderr, "receiver: cannot listen on %s or open %s\n", listen_spec, log_path);
		goto out;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = lfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	last_flush = rcv_now_us();
	while (!rcv_stop) {
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct rcv_conn *c;

			if (fd == lfd) {
				int cfd, one = 1;

				while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (cfd >= RCV_MAX_FDS) {
						close(cfd);
						continue;
					}
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					if (conns[cfd].in == NULL)
						conns[cfd].in = malloc(RCV_IN_MAX);
					conns[cfd].len = 0;
					ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = cfd };
					if (conns[cfd].in == NULL || epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) != 0)
						close(cfd);
				}
				continue;
			}
			c = &conns[fd];
			for (;;) {
				ssize_t r = read(fd, c->in + c->len, RCV_IN_MAX - 1 - c->len);

				if (r > 0) {
					c->len += (size_t)r;
					if (rcv_serve(fd, c, log, &count) != 0)
						r = 0;
					else
						continue;
				}
				if (r == 0 || errno != EAGAIN)
					close(fd);   /* also leaves the epoll set */
				break;
			}
		}
		if (rcv_now_us() - last_flush >= 100000) {
			fflush(log);
			last_flush = rcv_now_us();
		}
	}
	code = 0;
out:
	if (log != NULL)
		fclose(log);
	if (conns != NULL) {
		for (i = 0; i < RCV_MAX_FDS; i++)
			free(conns[i].in);
	}
	free(conns);
	if (lfd >= 0)
		close(lfd);
	if (ep >= 0)
		close(ep);
	fprintf(stderr, "receiver: %lld requests\n", count);
	return code;
}
