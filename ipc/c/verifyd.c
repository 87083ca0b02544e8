/*
 * verifyd.c - the C client of the verifyd Unix socket protocol, version 1.
 *
 * The API and its contracts are documented in ../include/verifyd.h; the
 * wire format is ipc/PROTOCOL.md. This file holds no global state.
 *
 * Design. A connection owns three buffers sized once at connect from the
 * server's limits: a read buffer (at least one maximal answer frame), a
 * write buffer (at least one maximal request frame) and an array of
 * max_in_flight request states. Every call runs one or more "rounds": it
 * gives the k requests of the round the ids base..base+k-1, encodes as many
 * as fit into the write buffer, and then, until every request is answered,
 * writes what is pending and decodes whatever answers arrive, waiting in
 * poll(2) for either direction. Reading while writing means a round never
 * deadlocks against a server that stops reading until its answers are
 * read. An answer is accepted only for a request whose frame was written
 * completely and not answered yet. Answers of a single verifyd_verify are
 * returned as views into the read buffer; a batch copies the body of each
 * answer into an arena (it must outlive later reads) and points the
 * results into it once the batch is complete, since the arena may move
 * while it grows.
 *
 * Every number on the wire is read and written byte by byte in
 * little-endian order at the offsets of the structs in verifyd.h, so the
 * code depends on neither the host's byte order nor its alignment rules.
 */
#define _POSIX_C_SOURCE 200809L

#include "verifyd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The frame layouts the code relies on; verifyd.h states them as structs. */
#define VD_ASSERT(name, cond) typedef char vd_assert_##name[(cond) ? 1 : -1]
VD_ASSERT(header, sizeof(struct verifyd_header) == 16);
VD_ASSERT(hello, sizeof(struct verifyd_hello) == 8);
VD_ASSERT(hello_ok, sizeof(struct verifyd_hello_ok) == 24);
VD_ASSERT(verify, sizeof(struct verifyd_verify) == 8);
VD_ASSERT(verify_result, sizeof(struct verifyd_verify_result) == 32);
VD_ASSERT(error, sizeof(struct verifyd_error) == 8);

#define HDR sizeof(struct verifyd_header)
#define OFF(type, field) offsetof(struct type, field)

#define STATUS_MAX VERIFYD_STATUS_RATE_LIMITED
#define ERR_CODE_MAX VERIFYD_ERR_SCOPE_TOO_LONG

#define WRITE_BUF_MIN (64 * 1024)
#define ARENA_MIN 4096

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

/* States of a request within a round. */
enum { REQ_DONE = 0, REQ_QUEUED = 1, REQ_SENT = 2 };

struct verifyd_conn {
	int fd;
	int timeout_ms;
	int broken; /* 0, or the error that made the connection unusable */
	uint64_t next_id;
	struct verifyd_hello_ok limits; /* as the server sent them */
	size_t max_in_flight;           /* requests per round */
	size_t send_limit;              /* longest request frame */

	unsigned char *rbuf; /* answers read: [rstart, rend) not decoded yet */
	size_t rcap, rstart, rend;
	unsigned char *wbuf; /* requests encoded for the current round */
	size_t wcap;
	unsigned char *state; /* max_in_flight REQ_* of the current round */
	unsigned char *arena; /* answer bodies of the current batch */
	size_t acap;

	int last_server_error;
	char last_server_message[256];
};

/* One round: k requests of the same opcode, ids base..base+k-1. */
struct round {
	uint8_t op; /* VERIFYD_OP_HELLO, _VERIFY or _PING */
	const verifyd_request *reqs;
	verifyd_result *results;
	unsigned char *state;
	size_t k;
	uint64_t base;
	size_t encoded;  /* requests [0, encoded) are in the write buffer or sent */
	size_t sent;     /* requests [0, sent) are written completely */
	size_t sent_pos; /* the write buffer offset where request sent starts */
	size_t answered;
	size_t wpos, wlen; /* the write buffer's [wpos, wlen) is not written yet */
	int write_closed;  /* the server stopped reading: only read from now */
	int copy;          /* batch: keep answers in the arena */
	size_t arena_used;
	int refused;  /* HELLO or PING round: the server's ERROR code */
	int draining; /* the server answered SHUTTING_DOWN: it closes the connection next */
};

static const char empty[1] = "";

/* Little-endian access. */

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void put_header(unsigned char *p, size_t length, uint8_t opcode, uint64_t id)
{
	put32(p + OFF(verifyd_header, length), (uint32_t)length);
	p[OFF(verifyd_header, version)] = VERIFYD_PROTOCOL_VERSION;
	p[OFF(verifyd_header, opcode)] = opcode;
	put16(p + OFF(verifyd_header, flags), 0);
	put64(p + OFF(verifyd_header, request_id), id);
}

static void clear_result(verifyd_result *r)
{
	memset(r, 0, sizeof *r);
	r->subject.ptr = r->kind.ptr = r->key_id.ptr = empty;
	r->grant.ptr = r->source.ptr = r->realm.ptr = empty;
	r->roles = (const unsigned char *)empty;
}

/*
 * decode_result checks the body of a VERIFY_RESULT (the frame after its
 * header, blen bytes) and, if it is valid, fills *r with views into it.
 * It returns 0 or VERIFYD_EPROTO, leaving *r cleared then.
 */
static int decode_result(const unsigned char *b, size_t blen, verifyd_result *r)
{
	static const size_t len_off[6] = {
		OFF(verifyd_verify_result, subject_len), OFF(verifyd_verify_result, kind_len),
		OFF(verifyd_verify_result, key_id_len), OFF(verifyd_verify_result, grant_len),
		OFF(verifyd_verify_result, source_len), OFF(verifyd_verify_result, realm_len),
	};
	verifyd_str *views[6];
	size_t off = sizeof(struct verifyd_verify_result), i, roles_start;
	unsigned role_count;

	clear_result(r);
	views[0] = &r->subject;
	views[1] = &r->kind;
	views[2] = &r->key_id;
	views[3] = &r->grant;
	views[4] = &r->source;
	views[5] = &r->realm;
	if (blen < sizeof(struct verifyd_verify_result))
		return VERIFYD_EPROTO;
	role_count = get16(b + OFF(verifyd_verify_result, role_count));
	if (b[OFF(verifyd_verify_result, reserved0)] != 0 || get32(b + OFF(verifyd_verify_result, reserved1)) != 0)
		goto bad;
	for (i = 0; i < 6; i++) {
		size_t n = get16(b + len_off[i]);
		if (n > blen - off)
			goto bad;
		views[i]->ptr = (const char *)(b + off);
		views[i]->len = n;
		off += n;
	}
	roles_start = off;
	for (i = 0; i < role_count; i++) {
		size_t n;
		if (blen - off < 2)
			goto bad;
		n = get16(b + off);
		off += 2;
		if (n > blen - off)
			goto bad;
		off += n;
	}
	if (off != blen)
		goto bad;
	r->status = b[OFF(verifyd_verify_result, status)];
	r->cache_ttl_ms = get32(b + OFF(verifyd_verify_result, cache_ttl_ms));
	r->expires_at_ms = (int64_t)get64(b + OFF(verifyd_verify_result, expires_at_ms));
	r->role_count = role_count;
	r->roles = b + roles_start;
	r->roles_len = blen - roles_start;
	for (i = 0; i < 6; i++) {
		if (views[i]->len == 0)
			views[i]->ptr = empty;
	}
	return 0;
bad:
	clear_result(r);
	return VERIFYD_EPROTO;
}

/* fail marks c unusable and returns err. */
static int fail(verifyd_conn *c, int err)
{
	if (!c->broken)
		c->broken = err;
	return err;
}

/* Deadlines: a deadline with tv_nsec -1 means none. */

static void deadline_start(const verifyd_conn *c, struct timespec *d)
{
	if (c->timeout_ms <= 0 || clock_gettime(CLOCK_MONOTONIC, d) != 0) {
		d->tv_sec = 0;
		d->tv_nsec = -1;
		return;
	}
	d->tv_sec += c->timeout_ms / 1000;
	d->tv_nsec += (long)(c->timeout_ms % 1000) * 1000000L;
	if (d->tv_nsec >= 1000000000L) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000L;
	}
}

/* remaining_ms returns the poll(2) timeout left until d: -1 for none, 0 when it has passed. */
static int remaining_ms(const struct timespec *d)
{
	struct timespec now;
	long long ms;
	if (d->tv_nsec < 0)
		return -1;
	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		return 0;
	ms = ((long long)d->tv_sec - (long long)now.tv_sec) * 1000LL;
	ms += ((long long)d->tv_nsec - (long long)now.tv_nsec + 999999LL) / 1000000LL;
	if (ms <= 0)
		return 0;
	if (ms > 0x7fffffffLL)
		return 0x7fffffff;
	return (int)ms;
}

/* Requests. */

static size_t verify_frame_len(const verifyd_request *q)
{
	return HDR + sizeof(struct verifyd_verify) + q->token_len + q->scope_len;
}

/* too_long reports whether a VERIFY with these lengths is beyond the server's limits or the client's. */
static int too_long(const verifyd_conn *c, size_t token_len, size_t scope_len)
{
	size_t room = c->send_limit - HDR - sizeof(struct verifyd_verify);
	return token_len > c->limits.max_token_bytes || scope_len > c->limits.max_scope_bytes || token_len > room ||
		scope_len > room - token_len;
}

static size_t request_len(const struct round *r, size_t i)
{
	switch (r->op) {
	case VERIFYD_OP_HELLO:
		return HDR + sizeof(struct verifyd_hello);
	case VERIFYD_OP_VERIFY:
		return verify_frame_len(&r->reqs[i]);
	default:
		return HDR;
	}
}

/* refill encodes the next requests of r into the write buffer once everything before them is written. */
static void refill(verifyd_conn *c, struct round *r)
{
	if (r->wpos < r->wlen || r->encoded == r->k || r->write_closed)
		return;
	r->wpos = r->wlen = r->sent_pos = 0;
	while (r->encoded < r->k) {
		size_t i = r->encoded, n;
		unsigned char *p;
		if (r->state[i] == REQ_DONE) { /* refused before sending */
			r->encoded++;
			continue;
		}
		n = request_len(r, i);
		if (n > c->wcap - r->wlen)
			break;
		p = c->wbuf + r->wlen;
		put_header(p, n, r->op, r->base + i);
		p += HDR;
		if (r->op == VERIFYD_OP_HELLO) {
			put16(p + OFF(verifyd_hello, min_version), VERIFYD_PROTOCOL_VERSION);
			put16(p + OFF(verifyd_hello, max_version), VERIFYD_PROTOCOL_VERSION);
			put32(p + OFF(verifyd_hello, reserved), 0);
		} else if (r->op == VERIFYD_OP_VERIFY) {
			const verifyd_request *q = &r->reqs[i];
			put32(p + OFF(verifyd_verify, token_len), (uint32_t)q->token_len);
			put32(p + OFF(verifyd_verify, scope_len), (uint32_t)q->scope_len);
			p += sizeof(struct verifyd_verify);
			if (q->token_len > 0)
				memcpy(p, q->token, q->token_len);
			if (q->scope_len > 0)
				memcpy(p + q->token_len, q->scope, q->scope_len);
		}
		r->wlen += n;
		r->encoded++;
	}
}

/* mark_sent moves r->sent past every request whose frame is now written completely. */
static void mark_sent(struct round *r)
{
	while (r->sent < r->encoded) {
		size_t i = r->sent, n;
		if (r->state[i] == REQ_DONE) {
			r->sent++;
			continue;
		}
		n = request_len(r, i);
		if (n > r->wpos - r->sent_pos)
			break;
		r->sent_pos += n;
		r->state[i] = REQ_SENT;
		r->sent++;
	}
}

/* Answers. */

static int arena_put(verifyd_conn *c, struct round *r, size_t idx, const unsigned char *b, size_t blen)
{
	size_t need = 8 + blen;
	if (c->acap - r->arena_used < need) {
		size_t cap = c->acap < ARENA_MIN ? ARENA_MIN : c->acap;
		unsigned char *a;
		while (cap - r->arena_used < need)
			cap *= 2;
		a = realloc(c->arena, cap);
		if (a == NULL)
			return fail(c, -ENOMEM);
		c->arena = a;
		c->acap = cap;
	}
	put32(c->arena + r->arena_used, (uint32_t)idx);
	put32(c->arena + r->arena_used + 4, (uint32_t)blen);
	memcpy(c->arena + r->arena_used + 8, b, blen);
	r->arena_used += need;
	return 0;
}

/* slot returns the index in r of the request answered by id, or -1 if no sent request awaits that answer. */
static long slot(const struct round *r, uint64_t id)
{
	uint64_t idx;
	if (id < r->base)
		return -1;
	idx = id - r->base;
	if (idx >= r->k || r->state[idx] != REQ_SENT)
		return -1;
	return (long)idx;
}

static int handle_error(verifyd_conn *c, struct round *r, uint64_t id, const unsigned char *b, size_t blen)
{
	unsigned code, mlen;
	size_t keep;
	long idx;
	if (blen < sizeof(struct verifyd_error))
		return fail(c, VERIFYD_EPROTO);
	code = get16(b + OFF(verifyd_error, code));
	mlen = get16(b + OFF(verifyd_error, message_len));
	if (get32(b + OFF(verifyd_error, reserved)) != 0 || blen != sizeof(struct verifyd_error) + mlen)
		return fail(c, VERIFYD_EPROTO);
	keep = mlen < sizeof c->last_server_message - 1 ? mlen : sizeof c->last_server_message - 1;
	memcpy(c->last_server_message, b + sizeof(struct verifyd_error), keep);
	c->last_server_message[keep] = '\0';
	c->last_server_error = (int)code;
	/* Every code but these three, including codes this client does not know, refuses the stream. */
	if (id == 0 || (code != VERIFYD_ERR_SHUTTING_DOWN && code != VERIFYD_ERR_TOKEN_TOO_LONG &&
			code != VERIFYD_ERR_SCOPE_TOO_LONG))
		return fail(c, VERIFYD_ESERVER);
	idx = slot(r, id);
	if (idx < 0)
		return fail(c, VERIFYD_EPROTO);
	if (code == VERIFYD_ERR_SHUTTING_DOWN)
		r->draining = 1;
	r->state[idx] = REQ_DONE;
	r->answered++;
	if (r->op == VERIFYD_OP_VERIFY) {
		r->results[idx].error = VERIFYD_ESERVER;
		r->results[idx].server_error = (int)code;
	} else {
		r->refused = (int)code;
	}
	return 0;
}

/* handle checks and applies one complete frame of len bytes at p, whose header is already checked. */
static int handle(verifyd_conn *c, struct round *r, const unsigned char *p, size_t len)
{
	uint8_t op = p[OFF(verifyd_header, opcode)];
	uint64_t id = get64(p + OFF(verifyd_header, request_id));
	const unsigned char *b = p + HDR;
	size_t blen = len - HDR;
	uint8_t want;
	long idx;

	if (op == VERIFYD_OP_ERROR)
		return handle_error(c, r, id, b, blen);
	want = r->op == VERIFYD_OP_HELLO ? VERIFYD_OP_HELLO_OK
		: r->op == VERIFYD_OP_VERIFY ? VERIFYD_OP_VERIFY_RESULT
		: VERIFYD_OP_PONG;
	idx = slot(r, id);
	if (op != want || idx < 0)
		return fail(c, VERIFYD_EPROTO);
	switch (op) {
	case VERIFYD_OP_HELLO_OK:
		if (blen != sizeof(struct verifyd_hello_ok))
			return fail(c, VERIFYD_EPROTO);
		c->limits.version = get16(b + OFF(verifyd_hello_ok, version));
		c->limits.reserved = get16(b + OFF(verifyd_hello_ok, reserved));
		c->limits.max_frame_bytes = get32(b + OFF(verifyd_hello_ok, max_frame_bytes));
		c->limits.max_in_flight = get32(b + OFF(verifyd_hello_ok, max_in_flight));
		c->limits.max_token_bytes = get32(b + OFF(verifyd_hello_ok, max_token_bytes));
		c->limits.max_scope_bytes = get32(b + OFF(verifyd_hello_ok, max_scope_bytes));
		c->limits.idle_timeout_ms = get32(b + OFF(verifyd_hello_ok, idle_timeout_ms));
		break;
	case VERIFYD_OP_PONG:
		if (blen != 0)
			return fail(c, VERIFYD_EPROTO);
		break;
	default: /* VERIFYD_OP_VERIFY_RESULT */
		if (decode_result(b, blen, &r->results[idx]) != 0)
			return fail(c, VERIFYD_EPROTO);
		if (r->copy) {
			int rc = arena_put(c, r, (size_t)idx, b, blen);
			if (rc != 0)
				return rc;
		}
		break;
	}
	r->state[idx] = REQ_DONE;
	r->answered++;
	return 0;
}

/* length_suits checks what a header alone tells: an answer opcode, and a length that suits it. */
static int length_suits(uint8_t op, uint32_t len)
{
	switch (op) {
	case VERIFYD_OP_HELLO_OK:
		return len == HDR + sizeof(struct verifyd_hello_ok);
	case VERIFYD_OP_VERIFY_RESULT:
		return len >= HDR + sizeof(struct verifyd_verify_result);
	case VERIFYD_OP_PONG:
		return len == HDR;
	case VERIFYD_OP_ERROR:
		return len >= HDR + sizeof(struct verifyd_error);
	default:
		return 0;
	}
}

/*
 * decode handles the complete frames buffered, stopping once the round is
 * answered. Each header is checked as soon as it is buffered, so a frame
 * that cannot be valid is refused without waiting for the rest of it.
 */
static int decode(verifyd_conn *c, struct round *r)
{
	while (r->answered < r->k) {
		const unsigned char *p = c->rbuf + c->rstart;
		size_t avail = c->rend - c->rstart;
		uint32_t len;
		uint8_t op;
		int rc;
		if (avail < HDR)
			return 0;
		len = get32(p + OFF(verifyd_header, length));
		op = p[OFF(verifyd_header, opcode)];
		if (len < HDR || len > VERIFYD_MAX_ANSWER_BYTES || p[OFF(verifyd_header, version)] != VERIFYD_PROTOCOL_VERSION ||
			get16(p + OFF(verifyd_header, flags)) != 0)
			return fail(c, VERIFYD_EPROTO);
		if (!length_suits(op, len))
			return fail(c, VERIFYD_EPROTO);
		if (avail < len)
			return 0;
		c->rstart += len;
		rc = handle(c, r, p, len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* fill reads what the socket has into the read buffer. */
static int fill(verifyd_conn *c)
{
	if (c->rstart == c->rend) {
		c->rstart = c->rend = 0;
	} else if (c->rend == c->rcap) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
		c->rend -= c->rstart;
		c->rstart = 0;
	}
	if (c->rend == c->rcap) /* cannot happen: a checked frame fits */
		return fail(c, VERIFYD_EPROTO);
	for (;;) {
		ssize_t n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, 0);
		if (n > 0) {
			c->rend += (size_t)n;
			return 0;
		}
		if (n == 0)
			return fail(c, VERIFYD_ECLOSED);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == ECONNRESET)
			return fail(c, VERIFYD_ECLOSED);
		return fail(c, -errno);
	}
}

/* run_round writes the requests of r and reads answers until every one is answered or the deadline passes. */
static int run_round(verifyd_conn *c, struct round *r, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd pfd;
		int want_write, rc, t;
		rc = decode(c, r);
		if (rc != 0)
			return rc;
		if (r->answered == r->k)
			return 0;
		refill(c, r);
		want_write = r->wpos < r->wlen && !r->write_closed;
		if (want_write) {
			ssize_t n = send(c->fd, c->wbuf + r->wpos, r->wlen - r->wpos, SEND_FLAGS);
			if (n > 0) {
				r->wpos += (size_t)n;
				mark_sent(r);
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
				/* The server is gone or stopped reading; an ERROR frame may still be there to read. */
				r->write_closed = 1;
				want_write = 0;
			} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				return fail(c, -errno);
			}
		}
		t = remaining_ms(deadline);
		if (t == 0)
			return fail(c, -ETIMEDOUT);
		pfd.fd = c->fd;
		pfd.events = (short)(POLLIN | (want_write ? POLLOUT : 0));
		pfd.revents = 0;
		rc = poll(&pfd, 1, t);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return fail(c, -errno);
		}
		if (rc == 0)
			return fail(c, -ETIMEDOUT);
		if (pfd.revents & POLLNVAL)
			return fail(c, -EBADF);
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			rc = fill(c);
			if (rc != 0)
				return rc;
		}
	}
}

/* start_round prepares r for k requests of opcode op. */
static void start_round(verifyd_conn *c, struct round *r, uint8_t op, size_t k)
{
	memset(r, 0, sizeof *r);
	r->op = op;
	r->k = k;
	r->state = c->state;
	if (c->next_id > UINT64_MAX - k)
		c->next_id = 1;
	r->base = c->next_id;
	c->next_id += k;
	memset(r->state, REQ_QUEUED, k);
}

/* Connecting. */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* wait_connected waits for a connect in progress and returns its outcome. */
static int wait_connected(int fd, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd pfd;
		int rc, t = remaining_ms(deadline), err = 0;
		socklen_t len = sizeof err;
		if (t == 0)
			return -ETIMEDOUT;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		rc = poll(&pfd, 1, t);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return -ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		return -err;
	}
}

static int dial(verifyd_conn *c, const char *path, size_t plen, const struct timespec *deadline)
{
	struct sockaddr_un sa;
	int rc;
#ifdef SOCK_CLOEXEC
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c->fd >= 0)
		(void)fcntl(c->fd, F_SETFD, FD_CLOEXEC);
#endif
	if (c->fd < 0)
		return -errno;
#ifdef SO_NOSIGPIPE
	{
		int one = 1;
		(void)setsockopt(c->fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
	}
#endif
	rc = set_nonblock(c->fd);
	if (rc != 0)
		return rc;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	for (;;) {
		int t;
		if (connect(c->fd, (const struct sockaddr *)&sa, (socklen_t)sizeof sa) == 0 || errno == EISCONN)
			return 0;
		if (errno == EINPROGRESS || errno == EALREADY || errno == EINTR)
			return wait_connected(c->fd, deadline);
		if (errno != EAGAIN)
			return -errno;
		/* Linux: the server's accept backlog is full. Retry shortly. */
		t = remaining_ms(deadline);
		if (t == 0)
			return -ETIMEDOUT;
		(void)poll(NULL, 0, t < 0 || t > 10 ? 10 : t);
	}
}

static int grow(unsigned char **buf, size_t *cap, size_t want)
{
	unsigned char *p;
	if (*cap >= want)
		return 0;
	p = realloc(*buf, want);
	if (p == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = want;
	return 0;
}

static int handshake(verifyd_conn *c, const struct timespec *deadline)
{
	struct round r;
	unsigned char hello_state;
	const struct verifyd_hello_ok *l = &c->limits;
	uint64_t largest;
	int rc;

	c->state = &hello_state;
	start_round(c, &r, VERIFYD_OP_HELLO, 1);
	rc = run_round(c, &r, deadline);
	c->state = NULL;
	if (rc == VERIFYD_ESERVER && c->last_server_error == VERIFYD_ERR_UNSUPPORTED_VERSION)
		return VERIFYD_EVERSION;
	if (rc != 0)
		return rc;
	if (r.refused != 0)
		return r.refused == VERIFYD_ERR_UNSUPPORTED_VERSION ? VERIFYD_EVERSION : VERIFYD_ESERVER;
	if (l->version != VERIFYD_PROTOCOL_VERSION)
		return VERIFYD_EVERSION;
	if (l->reserved != 0 || l->max_in_flight == 0 ||
		l->max_frame_bytes < HDR + sizeof(struct verifyd_verify))
		return VERIFYD_EPROTO;

	c->max_in_flight = l->max_in_flight < VERIFYD_CLIENT_MAX_IN_FLIGHT ? l->max_in_flight
		: VERIFYD_CLIENT_MAX_IN_FLIGHT;
	c->send_limit = l->max_frame_bytes < VERIFYD_CLIENT_MAX_FRAME ? l->max_frame_bytes : VERIFYD_CLIENT_MAX_FRAME;
	/* The write buffer holds the longest request the limits allow, and a few short ones at least. */
	largest = (uint64_t)(HDR + sizeof(struct verifyd_verify)) + l->max_token_bytes + l->max_scope_bytes;
	if (largest > c->send_limit)
		largest = c->send_limit;
	if (largest < WRITE_BUF_MIN)
		largest = WRITE_BUF_MIN;
	c->state = malloc(c->max_in_flight);
	if (c->state == NULL || grow(&c->wbuf, &c->wcap, (size_t)largest) != 0)
		return -ENOMEM;
	return 0;
}

int verifyd_connect(const char *socket_path, int timeout_ms, verifyd_conn **out)
{
	verifyd_conn *c;
	struct timespec deadline;
	size_t plen;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (socket_path == NULL || socket_path[0] == '\0')
		return -EINVAL;
	plen = strlen(socket_path);
	if (plen >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return -ENOMEM;
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	c->next_id = 1;
	/* The read buffer holds the longest answer; the write buffer, until the limits are known, HELLO. */
	c->send_limit = HDR + sizeof(struct verifyd_hello);
	if (grow(&c->rbuf, &c->rcap, VERIFYD_MAX_ANSWER_BYTES) != 0 || grow(&c->wbuf, &c->wcap, c->send_limit) != 0) {
		verifyd_close(c);
		return -ENOMEM;
	}
	deadline_start(c, &deadline);
	rc = dial(c, socket_path, plen, &deadline);
	if (rc == 0)
		rc = handshake(c, &deadline);
	if (rc != 0) {
		verifyd_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void verifyd_close(verifyd_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		(void)close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
	free(c->state);
	free(c->arena);
	free(c);
}

/* Calls. */

int verifyd_verify(verifyd_conn *c, const char *token, size_t token_len, const char *scope, size_t scope_len,
	verifyd_result *result)
{
	struct round r;
	verifyd_request q;
	struct timespec deadline;
	int rc;

	if (result != NULL)
		clear_result(result);
	if (c == NULL || result == NULL || (token == NULL && token_len > 0) || (scope == NULL && scope_len > 0))
		return -EINVAL;
	if (c->broken)
		return VERIFYD_EBROKEN;
	if (too_long(c, token_len, scope_len))
		return result->error = VERIFYD_ETOOLONG;
	q.token = token;
	q.token_len = token_len;
	q.scope = scope;
	q.scope_len = scope_len;
	start_round(c, &r, VERIFYD_OP_VERIFY, 1);
	r.reqs = &q;
	r.results = result;
	deadline_start(c, &deadline);
	rc = run_round(c, &r, &deadline);
	if (rc != 0) {
		clear_result(result);
		return rc;
	}
	if (r.draining)
		fail(c, VERIFYD_ESERVER);
	return result->error;
}

int verifyd_verify_batch(verifyd_conn *c, const verifyd_request *reqs, size_t n, verifyd_result *results)
{
	size_t done, i, pos, used = 0;

	if (c == NULL || (n > 0 && (reqs == NULL || results == NULL)))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if ((reqs[i].token == NULL && reqs[i].token_len > 0) || (reqs[i].scope == NULL && reqs[i].scope_len > 0))
			return -EINVAL;
	}
	for (i = 0; i < n; i++)
		clear_result(&results[i]);
	if (c->broken)
		return VERIFYD_EBROKEN;
	for (done = 0; done < n;) {
		struct round r;
		struct timespec deadline;
		size_t k = n - done < c->max_in_flight ? n - done : c->max_in_flight;
		int rc;
		start_round(c, &r, VERIFYD_OP_VERIFY, k);
		r.reqs = reqs + done;
		r.results = results + done;
		r.copy = 1;
		r.arena_used = used;
		for (i = 0; i < k; i++) {
			if (too_long(c, r.reqs[i].token_len, r.reqs[i].scope_len)) {
				r.results[i].error = VERIFYD_ETOOLONG;
				r.state[i] = REQ_DONE;
				r.answered++;
			}
		}
		deadline_start(c, &deadline);
		rc = run_round(c, &r, &deadline);
		if (rc != 0)
			return rc;
		/* The arena records the index within the round; make it absolute. */
		for (pos = used; pos < r.arena_used; pos += 8 + get32(c->arena + pos + 4))
			put32(c->arena + pos, (uint32_t)(get32(c->arena + pos) + done));
		used = r.arena_used;
		done += k;
		if (r.draining) {
			/* The server closes the connection next: refuse the rest without sending it. */
			for (i = done; i < n; i++) {
				results[i].error = VERIFYD_ESERVER;
				results[i].server_error = VERIFYD_ERR_SHUTTING_DOWN;
			}
			fail(c, VERIFYD_ESERVER);
			break;
		}
	}
	/* The arena no longer moves: point the results into it. */
	for (pos = 0; pos < used;) {
		size_t idx = get32(c->arena + pos), blen = get32(c->arena + pos + 4);
		if (idx >= n || decode_result(c->arena + pos + 8, blen, &results[idx]) != 0)
			return fail(c, VERIFYD_EPROTO); /* cannot happen: checked when received */
		pos += 8 + blen;
	}
	return 0;
}

int verifyd_ping(verifyd_conn *c)
{
	struct round r;
	struct timespec deadline;
	int rc;
	if (c == NULL)
		return -EINVAL;
	if (c->broken)
		return VERIFYD_EBROKEN;
	start_round(c, &r, VERIFYD_OP_PING, 1);
	deadline_start(c, &deadline);
	rc = run_round(c, &r, &deadline);
	if (rc != 0)
		return rc;
	if (r.draining)
		fail(c, VERIFYD_ESERVER);
	return r.refused ? VERIFYD_ESERVER : 0;
}

/* Accessors. */

int verifyd_role_next(const verifyd_result *r, size_t *pos, verifyd_str *role)
{
	size_t n;
	if (r == NULL || pos == NULL || role == NULL || r->roles == NULL || *pos >= r->roles_len ||
		r->roles_len - *pos < 2)
		return 0;
	n = get16(r->roles + *pos);
	if (n > r->roles_len - *pos - 2)
		return 0;
	role->ptr = n > 0 ? (const char *)(r->roles + *pos + 2) : empty;
	role->len = n;
	*pos += 2 + n;
	return 1;
}

int verifyd_has_role(const verifyd_result *r, const char *role, size_t role_len)
{
	size_t pos = 0;
	verifyd_str s;
	if (role == NULL && role_len > 0)
		return 0;
	while (verifyd_role_next(r, &pos, &s)) {
		if (s.len == role_len && (role_len == 0 || memcmp(s.ptr, role, role_len) == 0))
			return 1;
	}
	return 0;
}

const struct verifyd_hello_ok *verifyd_server_limits(const verifyd_conn *c)
{
	return c == NULL ? NULL : &c->limits;
}

int verifyd_broken(const verifyd_conn *c)
{
	return c == NULL ? VERIFYD_EBROKEN : c->broken;
}

int verifyd_last_server_error(const verifyd_conn *c)
{
	return c == NULL ? 0 : c->last_server_error;
}

const char *verifyd_last_server_message(const verifyd_conn *c)
{
	return c == NULL ? empty : c->last_server_message;
}

const char *verifyd_status_name(int status)
{
	static const char *const names[] = {
		"ok", "malformed", "unknown", "expired", "revoked", "forbidden",
		"unavailable", "invalid_scope", "bad_signature", "not_yet_valid", "untrusted_key", "invalid_claims",
		"rate_limited",
	};
	if (status < 0 || status > STATUS_MAX)
		return "invalid";
	return names[status];
}

const char *verifyd_error_code_name(int code)
{
	static const char *const names[] = {
		"bad_frame", "frame_too_large", "frame_too_small", "unsupported_version", "unknown_opcode",
		"too_many_in_flight", "truncated", "shutting_down", "token_too_long", "scope_too_long",
	};
	if (code < 1 || code > ERR_CODE_MAX)
		return "invalid";
	return names[code - 1];
}

const char *verifyd_strerror(int err)
{
	switch (err) {
	case 0:
		return "verifyd: success";
	case VERIFYD_ESERVER:
		return "verifyd: the server refused the request";
	case VERIFYD_EPROTO:
		return "verifyd: the server broke the protocol";
	case VERIFYD_ECLOSED:
		return "verifyd: the server closed the connection";
	case VERIFYD_ETOOLONG:
		return "verifyd: token or scope beyond the server's limits";
	case VERIFYD_EBROKEN:
		return "verifyd: the connection is unusable after an earlier error";
	case VERIFYD_EVERSION:
		return "verifyd: no protocol version in common with the server";
	case -ETIMEDOUT:
		return "verifyd: timed out";
	case -ENOENT:
		return "verifyd: no socket at this path";
	case -ECONNREFUSED:
		return "verifyd: connection refused (nothing listening on the socket)";
	case -EACCES:
		return "verifyd: permission denied";
	case -EPERM:
		return "verifyd: operation not permitted";
	case -ENAMETOOLONG:
		return "verifyd: socket path too long";
	case -ENOTDIR:
		return "verifyd: a component of the socket path is not a directory";
	case -ENOTSOCK:
		return "verifyd: not a socket";
	case -EPROTOTYPE:
		return "verifyd: the socket is not a stream socket";
	case -EINVAL:
		return "verifyd: invalid argument";
	case -ENOMEM:
		return "verifyd: out of memory";
	case -EMFILE:
	case -ENFILE:
		return "verifyd: too many open files";
	case -ENOBUFS:
		return "verifyd: no buffer space available";
	case -EBADF:
		return "verifyd: bad file descriptor";
	case -EIO:
		return "verifyd: input/output error";
	default:
		return err < 0 ? "verifyd: system error (a negated errno value)" : "verifyd: invalid error code";
	}
}
