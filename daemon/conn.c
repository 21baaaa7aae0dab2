/* SPDX-License-Identifier: MIT */
/* Connections: framing, reading with a budget, sending, closing. See
 * daemon.h for who owns what. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "daemon/daemon.h"
#include "daemon/log.h"

struct conn *
conn_new(struct daemon *d, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if ((c->wfd = dup(fd)) < 0) {
		free(c);
		return NULL;
	}
	daemon_mutex_init(&c->lock);
	c->daemon = d;
	c->fd = fd;
	c->refs = 1;
	c->uid = (uid_t)-1;
	c->active_ns = monotonic_ns();
	return c;
}

void
conn_ref(struct conn *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void
conn_unref(struct conn *c)
{
	if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	close(c->fd);
	close(c->wfd);
	pthread_mutex_destroy(&c->lock);
	__atomic_sub_fetch(&c->daemon->out_total, c->out_len, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&c->daemon->in_total, c->in_held, __ATOMIC_RELAXED);
	gbx_frame_reader_clear(&c->in);
	free(c->out);
	free(c);
}

void
wake_main_thread(struct daemon *d)
{
	uint64_t one = 1;

	if (write(d->post_fd, &one, sizeof(one)) != sizeof(one))
		log_warning("cannot notify the main thread: %s", strerror(errno));
}

/* Ask the main thread to do something about c (NOTICE_FLUSH, NOTICE_CLOSE).
 * A connection is listed once however many notices it has; the listing
 * holds a reference. */
static void
post_notice(struct daemon *d, struct conn *c, unsigned notice)
{
	bool list;

	pthread_mutex_lock(&d->post_lock);
	c->notices |= notice;
	if ((list = !c->listed)) {
		c->listed = true;
		conn_ref(c);
		c->post_next = d->posted;
		d->posted = c;
	}
	pthread_mutex_unlock(&d->post_lock);
	if (list)
		wake_main_thread(d);
}

/* Room for `more` bytes in c->out (c->lock held): -ENOBUFS past the
 * client's budget or the daemon's total, unless `force` (the error that
 * closes it, LIMIT_FRAME_BYTES at most). */
static int
out_reserve(struct conn *c, size_t more, bool force)
{
	const struct config *cf = &c->daemon->config;
	size_t mine = (size_t)cf->client_output_kib << 10, all = (size_t)cf->output_total_mib << 20;
	size_t total = __atomic_load_n(&c->daemon->out_total, __ATOMIC_RELAXED);

	if (!force && (c->out_len + more > mine || total + more > all))
		return -ENOBUFS;
	if (c->out_len + more > c->out_cap) {
		size_t cap = (c->out_len + more) * 2;
		unsigned char *p = realloc(c->out, cap);
		if (p == NULL)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	return 0;
}

/* Send what waits (c->lock held). */
static int
flush_locked(struct conn *c)
{
	size_t sent = 0;

	while (sent < c->out_len) {
		ssize_t n = send(c->fd, c->out + sent, c->out_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			c->broken = true;
			return -errno;
		}
		sent += (size_t)n;
	}
	memmove(c->out, c->out + sent, c->out_len - sent);
	c->out_len -= sent;
	__atomic_sub_fetch(&c->daemon->out_total, sent, __ATOMIC_RELAXED);
	if (c->closing && c->out_len == 0)
		shutdown(c->fd, SHUT_RDWR); /* it has read why: its owner closes it */
	return 0;
}

/* Queue bytes behind what waits (c->lock held, room reserved). */
static void
out_append(struct conn *c, const void *p, size_t n)
{
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	__atomic_add_fetch(&c->daemon->out_total, n, __ATOMIC_RELAXED);
}

/* The client has left more replies unread than it may: queue one error
 * frame that says so (past the budget), take nothing more, and close once
 * it has been read (the sweep closes a client that never reads it). Its
 * replies are never dropped without a word. c->lock held. */
static void
over_budget_locked(struct conn *c, size_t wanted)
{
	char text[LIMIT_FRAME_BYTES - GBX_HEADER_SIZE];
	unsigned char hdr[GBX_HEADER_SIZE];
	int n = snprintf(text, sizeof(text),
	                 "{\"error\":\"%zu bytes of replies unread, over this client's output budget (client_output_kib "
	                 "= %u, output_total_mib = %u in gearboxd.conf): closing\",\"code\":\"%s\"}",
	                 c->out_len + wanted, c->daemon->config.client_output_kib, c->daemon->config.output_total_mib,
	                 GBX_ERR_LIMIT);

	if (n < 0 || (size_t)n >= sizeof(text))
		n = (int)sizeof(text) - 1;
	gbx_encode_header(hdr, GBX_MSG_ERROR, 0, (uint32_t)n);
	if (out_reserve(c, sizeof(hdr) + (size_t)n, true) == 0) {
		out_append(c, hdr, sizeof(hdr));
		out_append(c, text, (size_t)n);
	}
	c->closing = true;
	c->closing_ns = monotonic_ns();
	log_notice("client %llu (uid %u): %zu bytes of replies unread, over its output budget: closing",
	           (unsigned long long)c->id, (unsigned)c->uid, c->out_len + wanted);
}

/* Send one frame made of two parts: straight to the socket when nothing
 * waits before it, else behind what waits. What the socket does not take
 * is left for the main thread to flush. */
static int
send_parts(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	size_t done = 0;
	int ret = 0;
	bool post = false;

	pthread_mutex_lock(&c->lock);
	if (c->gone || c->broken || c->closing) { /* closing: its error waits to be read */
		pthread_mutex_unlock(&c->lock);
		return -EPIPE;
	}
	if (c->out_len == 0) {
		struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = blen ? 2 : 1 };
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			c->broken = true;
			ret = -ECONNRESET;
		}
		done = n > 0 ? (size_t)n : 0;
	}
	if (ret == 0 && done < alen + blen) {
		if (out_reserve(c, alen + blen - done, false) != 0) {
			over_budget_locked(c, alen + blen - done);
			ret = -ENOBUFS;
		} else {
			if (done < alen) {
				out_append(c, (const char *)a + done, alen - done);
				done = alen;
			}
			out_append(c, (const char *)b + (done - alen), blen - (done - alen));
		}
		if (!c->flush_posted)
			post = c->flush_posted = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (post)
		post_notice(c->daemon, c, NOTICE_FLUSH);
	if (ret == -ECONNRESET)
		shutdown(c->fd, SHUT_RDWR); /* its owner finds out and closes it */
	return ret;
}

int
conn_send_frame(struct conn *c, uint16_t type, uint32_t id, const void *payload, size_t len)
{
	unsigned char hdr[GBX_HEADER_SIZE];

	gbx_encode_header(hdr, type, id, (uint32_t)len);
	return send_parts(c, hdr, sizeof(hdr), payload, len);
}

int
conn_send_raw(struct conn *c, const unsigned char *frame, size_t len)
{
	return send_parts(c, frame, len, NULL, 0);
}

void
conn_close_locked(struct daemon *d, struct conn *c)
{
	struct conn **pp = &d->conns;

	if (c->gone)
		return;
	while (*pp != NULL && *pp != c)
		pp = &(*pp)->next;
	if (*pp == c)
		*pp = c->next;
	d->nconns--;
	epoll_ctl(d->conn_epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (session_count_owned(&d->sessions, c) > 0)
		plan_request(d, "a client with sessions left");
	session_close_owned(&d->sessions, c);
	serve_forget_conn(d, c);
	pthread_mutex_lock(&c->lock);
	c->gone = true;
	pthread_mutex_unlock(&c->lock);
	/* Closing with unread input makes the peer's next read fail
	 * (ECONNRESET) before it sees an error reply: send FIN, drop what
	 * is already queued. */
	shutdown(c->fd, SHUT_WR);
	{
		char sink[4096];
		for (int i = 0; i < 256 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
	}
	log_debug("client %llu closed", (unsigned long long)c->id);
	post_notice(d, c, NOTICE_CLOSE); /* the main thread drops the list's reference */
}

/* Give the connection back to the workers' epoll set. */
static void
rearm(struct daemon *d, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c };

	if (epoll_ctl(d->conn_epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		log_warning("client %llu: epoll: %s", (unsigned long long)c->id, strerror(errno));
}

/* Room for the payload the header announces, within input_total_mib for
 * every connection's incomplete frames together: a hundred clients that
 * each announce 4 MiB and send two bytes would otherwise hold 400 MiB.
 * (c->in has decoded the header.) */
static bool
hold_input(struct daemon *d, struct conn *c)
{
	size_t cap = (size_t)d->config.input_total_mib << 20, want = (size_t)c->in.h.length + 1;
	size_t held = __atomic_add_fetch(&d->in_total, want, __ATOMIC_RELAXED);

	c->in_held = want;
	if (held > cap) {
		send_error(c, 0, GBX_ERR_LIMIT, "a frame of %u bytes while incomplete frames already hold %zu bytes "
		           "(input_total_mib = %u in gearboxd.conf): closing; send it again later",
		           c->in.h.length, held - want, d->config.input_total_mib);
		return false;
	}
	return true;
}

/* The frame is handled: its bytes no longer count, and a large buffer goes. */
static void
release_input(struct daemon *d, struct conn *c)
{
	__atomic_sub_fetch(&d->in_total, c->in_held, __ATOMIC_RELAXED);
	c->in_held = 0;
	gbx_frame_reader_trim(&c->in);
	c->payload = NULL;
}

/* Read what is there, up to READ_BUDGET bytes, through the connection's
 * frame reader; handle each complete frame.
 * 1: more may wait (budget spent), 0: drained, -1: close. */
static int
read_frames(struct daemon *d, struct conn *c)
{
	size_t budget = READ_BUDGET;

	while (budget > 0) {
		void *into;
		size_t want = gbx_frame_space(&c->in, &into);
		ssize_t n = recv(c->fd, into, want < budget ? want : budget, MSG_DONTWAIT);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		if (gbx_frame_pending(&c->in) == 0) /* a frame begins: the sweep times it */
			__atomic_store_n(&c->partial_ns, monotonic_ns(), __ATOMIC_RELAXED);
		budget -= (size_t)n;
		switch (gbx_frame_commit(&c->in, (size_t)n)) {
		case GBX_FRAME_MORE:
			/* the header is in, the payload to come: hold its room */
			if (c->in_held == 0 && gbx_frame_pending(&c->in) >= GBX_HEADER_SIZE && !hold_input(d, c))
				return -1;
			break;
		case GBX_FRAME_BAD:
			/* the framing itself is broken: say why, then close */
			send_error(c, 0, GBX_ERR_BAD_FRAME, "%s", c->in.error);
			return -1;
		case GBX_FRAME_NOMEM:
			return -1;
		case GBX_FRAME_READY:
			c->h = c->in.h;
			c->payload = c->in.payload;
			c->frame_ns = monotonic_ns();
			__atomic_store_n(&c->partial_ns, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&c->active_ns, c->frame_ns, __ATOMIC_RELAXED);
			handle_frame(d, c);
			release_input(d, c);
			if (c->broken)
				return -1;
			break;
		}
	}
	return 1;
}

void
conn_service(struct daemon *d, struct conn *c, uint32_t events)
{
	int state = c->broken ? -1 : 0;

	if (state == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
		state = read_frames(d, c);
	if (state >= 0) {
		rearm(d, c);
		return;
	}
	pthread_mutex_lock(&d->lock);
	conn_close_locked(d, c);
	pthread_mutex_unlock(&d->lock);
}

/* ---- the main thread's side ----------------------------------------------- */

/* Bytes the client sent that this daemon has not read yet. */
static int
unread_bytes(const struct conn *c)
{
	int n = 0;

	return ioctl(c->fd, FIONREAD, &n) == 0 ? n : 0;
}

/* How long ago `then` was, 0 when it is after `now`: workers read frames
 * too (leader/follower) and stamp them without daemon.lock, so a stamp can
 * be newer than the sweep's clock reading (unsigned, now - then would wrap
 * and close a busy client as idle). */
static uint64_t
age_ns(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/* Why c should go, or NULL (daemon.lock held). A frame whose rest is
 * already in the socket is not the client's delay but the loop's (it was
 * held off the CPU): it is read, not timed out. */
static const char *
overstayed(struct daemon *d, struct conn *c, uint64_t now, char *why, size_t size)
{
	const struct config *cf = &d->config;
	uint64_t partial = __atomic_load_n(&c->partial_ns, __ATOMIC_RELAXED);
	uint64_t active = __atomic_load_n(&c->active_ns, __ATOMIC_RELAXED);

	if (partial != 0 && age_ns(now, partial) > cf->frame_timeout_s * 1000000000ull && unread_bytes(c) == 0)
		snprintf(why, size, "a frame began more than %u s ago and is still incomplete (frame_timeout_s): closing",
		         cf->frame_timeout_s);
	else if (cf->idle_timeout_s != 0 && !c->subscribed && c->inflight == 0 &&
	         session_count_owned(&d->sessions, c) == 0 && age_ns(now, active) > cf->idle_timeout_s * 1000000000ull)
		snprintf(why, size, "no session and nothing sent for %u s (idle_timeout_s): closing", cf->idle_timeout_s);
	else
		return NULL;
	return why;
}

/* Once a second: clients with a frame begun and never finished, clients
 * without sessions that have gone quiet, and clients told they are over a
 * limit that never read it are closed. Each is told why when it can be. */
void
conn_sweep(struct daemon *d)
{
	uint64_t now = monotonic_ns(), patience = CLOSING_PATIENCE_S * 1000000000ull;
	char why[200];

	pthread_mutex_lock(&d->lock);
	for (struct conn *c = d->conns; c != NULL; c = c->next) {
		bool closing, stuck;
		pthread_mutex_lock(&c->lock);
		closing = c->closing;
		stuck = closing && age_ns(now, c->closing_ns) > patience;
		pthread_mutex_unlock(&c->lock);
		if (stuck) {
			shutdown(c->fd, SHUT_RDWR); /* a worker sees the end and closes it */
		} else if (!closing && overstayed(d, c, now, why, sizeof(why)) != NULL) {
			log_notice("client %llu (uid %u): %s", (unsigned long long)c->id, (unsigned)c->uid, why);
			send_error(c, 0, GBX_ERR_LIMIT, "%s", why);
			shutdown(c->fd, SHUT_RDWR);
		}
	}
	pthread_mutex_unlock(&d->lock);
}

static int
on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct conn *c = userdata;
	bool done, broken;

	(void)fd;
	(void)revents;
	pthread_mutex_lock(&c->lock);
	if (!c->gone)
		flush_locked(c);
	done = c->gone || c->out_len == 0;
	broken = c->broken && !c->gone;
	if (done)
		c->flush_posted = false;
	pthread_mutex_unlock(&c->lock);
	if (done)
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
	if (broken)
		shutdown(c->fd, SHUT_RDWR); /* its owner closes it */
	return 0;
}

static void
take_notice(struct daemon *d, struct conn *c, unsigned notices)
{
	if ((notices & NOTICE_FLUSH) && !c->gone) {
		if (c->out_source == NULL &&
		    sd_event_add_io(d->event, &c->out_source, c->wfd, EPOLLOUT, on_writable, c) < 0)
			log_warning("client %llu: cannot watch its socket for writing", (unsigned long long)c->id);
		if (c->out_source != NULL)
			sd_event_source_set_enabled(c->out_source, SD_EVENT_ON);
	}
	if (notices & NOTICE_CLOSE) {
		sd_event_source_disable_unref(c->out_source);
		c->out_source = NULL;
		conn_unref(c); /* the list's reference */
	}
}

void
conn_take_notices(struct daemon *d)
{
	struct conn *list, *next;
	uint64_t count;

	if (read(d->post_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warning("reading the notice eventfd: %s", strerror(errno));
	pthread_mutex_lock(&d->post_lock);
	list = d->posted;
	d->posted = NULL;
	pthread_mutex_unlock(&d->post_lock);
	for (; list != NULL; list = next) {
		unsigned notices;
		pthread_mutex_lock(&d->post_lock);
		next = list->post_next;
		notices = list->notices;
		list->notices = 0;
		list->listed = false;
		pthread_mutex_unlock(&d->post_lock);
		take_notice(d, list, notices);
		conn_unref(list); /* the listing's */
	}
}
