/*
 * verifyd_test.c - tests of the C client, against a real verifyd and
 * against a scripted hostile server.
 *
 *	verifyd_test SOCKET TOKEN SCOPE FORBIDDEN_SCOPE UNKNOWN_TOKEN [SUBJECT [ROLE]]
 *	verifyd_test --hostile
 *
 * Each argument may instead come from the environment, which keeps tokens
 * out of the process list: VERIFYD_SOCKET, VERIFYD_TEST_TOKEN (a key that
 * grants SCOPE), VERIFYD_TEST_SCOPE, VERIFYD_TEST_FORBIDDEN_SCOPE (a scope
 * the key does not grant), VERIFYD_TEST_UNKNOWN_TOKEN (well-formed, known
 * to no one), VERIFYD_TEST_SUBJECT and VERIFYD_TEST_ROLE (what the key's
 * answer must carry; optional). The first form runs the checks against the
 * server on SOCKET and then the hostile-server checks; --hostile runs only
 * the latter. Every check passed prints an "ok" line; the exit status is 0
 * only if all passed.
 *
 * The hostile server is a child process on a socket in a temporary
 * directory that answers each connection with crafted bytes: malformed,
 * oversized, out of order, truncated, dripped byte by byte under a storm of
 * signals, huge answers that need the client to read while it writes, and
 * randomly mutated frames. Built with -fsanitize=address,undefined, this
 * checks that no server can make the client misbehave.
 */
#define _POSIX_C_SOURCE 200809L

#include "verifyd.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void failf(int line, const char *fmt, ...)
{
	va_list ap;
	failures++;
	fprintf(stderr, "FAIL (line %d): ", line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			failf(__LINE__, __VA_ARGS__); \
	} while (0)

static void ok(const char *what)
{
	printf("ok %s\n", what);
	fflush(stdout);
}

static int str_eq(verifyd_str s, const char *want)
{
	return s.ptr != NULL && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static const char *arg(int argc, char **argv, int i, const char *env)
{
	const char *v;
	if (i < argc && argv[i][0] != '\0')
		return argv[i];
	v = getenv(env);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* check_roles walks the roles of r and checks their number. */
static void check_roles(const verifyd_result *r, const char *what)
{
	size_t pos = 0, n = 0;
	verifyd_str role;
	while (verifyd_role_next(r, &pos, &role)) {
		CHECK(role.ptr != NULL, "%s: a role with a NULL pointer", what);
		n++;
	}
	CHECK(n == r->role_count, "%s: iterated %zu roles, role_count %zu", what, n, r->role_count);
}

/* The real server. */

struct real {
	const char *socket, *token, *scope, *forbidden, *unknown, *subject, *role;
};

static void check_allowed(const struct real *t, const verifyd_result *r, const char *what)
{
	CHECK(r->error == 0 && r->status == VERIFYD_STATUS_OK, "%s: error %d status %d (%s)", what, r->error, r->status,
		verifyd_status_name(r->status));
	CHECK(t->subject ? str_eq(r->subject, t->subject) : r->subject.len > 0, "%s: subject %.*s", what,
		(int)r->subject.len, r->subject.ptr);
	CHECK(r->kind.len > 0, "%s: empty kind", what);
	CHECK(r->key_id.len > 0, "%s: empty key_id", what);
	CHECK(r->cache_ttl_ms > 0, "%s: cache_ttl_ms %u", what, (unsigned)r->cache_ttl_ms);
	CHECK(t->role == NULL || verifyd_has_role(r, t->role, strlen(t->role)), "%s: role %s missing", what,
		t->role ? t->role : "");
	check_roles(r, what);
}

static void check_refused(const verifyd_result *r, int status, const char *what)
{
	CHECK(r->error == 0 && r->status == status, "%s: error %d status %d (%s), want %d", what, r->error, r->status,
		verifyd_status_name(r->status), status);
}

static void test_real(const struct real *t)
{
	verifyd_conn *c = NULL, *bad = NULL;
	verifyd_result r, *results;
	verifyd_request *reqs;
	const struct verifyd_hello_ok *l;
	char *long_token;
	size_t i, n, tl = strlen(t->token), sl = strlen(t->scope), fl = strlen(t->forbidden), ul = strlen(t->unknown);
	int rc, failed_before = failures;

	rc = verifyd_connect(t->socket, 10000, &c);
	if (rc != 0) {
		failf(__LINE__, "connect %s: %d %s", t->socket, rc, verifyd_strerror(rc));
		return;
	}
	l = verifyd_server_limits(c);
	CHECK(l->version == 1 && l->max_frame_bytes >= 24 && l->max_in_flight > 0 && l->max_token_bytes > 0,
		"limits: version %u max_frame_bytes %u max_in_flight %u max_token_bytes %u", l->version,
		(unsigned)l->max_frame_bytes, (unsigned)l->max_in_flight, (unsigned)l->max_token_bytes);
	printf("ok connect (version %u, max_frame_bytes %u, max_in_flight %u, max_token_bytes %u, max_scope_bytes %u)\n",
		l->version, (unsigned)l->max_frame_bytes, (unsigned)l->max_in_flight, (unsigned)l->max_token_bytes,
		(unsigned)l->max_scope_bytes);

	rc = verifyd_ping(c);
	CHECK(rc == 0, "ping: %d %s", rc, verifyd_strerror(rc));
	ok("ping");

	rc = verifyd_verify(c, t->token, tl, t->scope, sl, &r);
	CHECK(rc == 0, "verify allowed: %d %s", rc, verifyd_strerror(rc));
	check_allowed(t, &r, "verify allowed");
	CHECK(r.grant.len > 0, "verify allowed: empty grant");
	printf("ok verify allowed (subject %.*s, kind %.*s, key_id %.*s, grant %.*s, %zu roles, cache_ttl_ms %u)\n",
		(int)r.subject.len, r.subject.ptr, (int)r.kind.len, r.kind.ptr, (int)r.key_id.len, r.key_id.ptr,
		(int)r.grant.len, r.grant.ptr, r.role_count, (unsigned)r.cache_ttl_ms);

	rc = verifyd_verify(c, t->token, tl, t->forbidden, fl, &r);
	CHECK(rc == 0, "verify forbidden: %d %s", rc, verifyd_strerror(rc));
	check_refused(&r, VERIFYD_STATUS_FORBIDDEN, "verify forbidden");
	CHECK(r.grant.len == 0, "verify forbidden: grant %.*s", (int)r.grant.len, r.grant.ptr);
	ok("verify forbidden (status 5)");

	rc = verifyd_verify(c, t->unknown, ul, t->scope, sl, &r);
	CHECK(rc == 0, "verify unknown: %d %s", rc, verifyd_strerror(rc));
	check_refused(&r, VERIFYD_STATUS_UNKNOWN, "verify unknown");
	CHECK(r.subject.len == 0 && r.role_count == 0, "verify unknown: carries a principal");
	ok("verify unknown (status 2)");

	rc = verifyd_verify(c, t->token, tl, NULL, 0, &r);
	CHECK(rc == 0, "authenticate only: %d %s", rc, verifyd_strerror(rc));
	check_allowed(t, &r, "authenticate only");
	ok("verify authenticate only (empty scope)");

	/* A batch of 200 mixed requests, answered by id. */
	n = 200;
	reqs = calloc(n, sizeof *reqs);
	results = calloc(n, sizeof *results);
	if (reqs == NULL || results == NULL) {
		failf(__LINE__, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		reqs[i].token = i % 4 == 2 ? t->unknown : t->token;
		reqs[i].token_len = i % 4 == 2 ? ul : tl;
		reqs[i].scope = i % 4 == 1 ? t->forbidden : i % 4 == 3 ? "" : t->scope;
		reqs[i].scope_len = i % 4 == 1 ? fl : i % 4 == 3 ? 0 : sl;
	}
	rc = verifyd_verify_batch(c, reqs, n, results);
	CHECK(rc == 0, "batch: %d %s", rc, verifyd_strerror(rc));
	for (i = 0; rc == 0 && i < n; i++) {
		char what[64];
		snprintf(what, sizeof what, "batch[%zu]", i);
		switch (i % 4) {
		case 0:
		case 3:
			check_allowed(t, &results[i], what);
			break;
		case 1:
			check_refused(&results[i], VERIFYD_STATUS_FORBIDDEN, what);
			break;
		default:
			check_refused(&results[i], VERIFYD_STATUS_UNKNOWN, what);
			CHECK(results[i].subject.len == 0, "%s: subject on an unknown key", what);
		}
	}
	ok("batch of 200 mixed requests answered by id");

	/* The same, with one token too long in the middle. */
	long_token = malloc((size_t)l->max_token_bytes + 1);
	if (long_token == NULL) {
		failf(__LINE__, "out of memory");
		return;
	}
	memset(long_token, 'a', (size_t)l->max_token_bytes + 1);
	reqs[100].token = long_token;
	reqs[100].token_len = (size_t)l->max_token_bytes + 1;
	rc = verifyd_verify_batch(c, reqs, n, results);
	CHECK(rc == 0, "batch with a long token: %d %s", rc, verifyd_strerror(rc));
	CHECK(results[100].error == VERIFYD_ETOOLONG, "batch[100]: error %d, want VERIFYD_ETOOLONG", results[100].error);
	check_allowed(t, &results[99], "batch[99] next to a long token");
	check_refused(&results[101], VERIFYD_STATUS_FORBIDDEN, "batch[101] next to a long token");
	ok("batch with a token too long: that request alone refused");

	rc = verifyd_verify(c, long_token, (size_t)l->max_token_bytes + 1, t->scope, sl, &r);
	CHECK(rc == VERIFYD_ETOOLONG && r.error == VERIFYD_ETOOLONG, "token too long: %d %s", rc, verifyd_strerror(rc));
	rc = verifyd_verify(c, long_token, (size_t)l->max_token_bytes, t->scope, sl, &r);
	CHECK(rc == 0 && r.status != VERIFYD_STATUS_OK, "token of max_token_bytes: %d status %d", rc, r.status);
	rc = verifyd_ping(c);
	CHECK(rc == 0 && verifyd_broken(c) == 0, "ping after a token too long: %d %s", rc, verifyd_strerror(rc));
	ok("token longer than max_token_bytes: VERIFYD_ETOOLONG, connection still usable");
	free(long_token);

	/* More than one round, many times over. */
	free(reqs);
	free(results);
	n = 5000;
	reqs = calloc(n, sizeof *reqs);
	results = calloc(n, sizeof *results);
	if (reqs == NULL || results == NULL) {
		failf(__LINE__, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		reqs[i].token = t->token;
		reqs[i].token_len = tl;
		reqs[i].scope = i % 2 ? t->scope : t->forbidden;
		reqs[i].scope_len = i % 2 ? sl : fl;
	}
	rc = verifyd_verify_batch(c, reqs, n, results);
	CHECK(rc == 0, "batch of 5000: %d %s", rc, verifyd_strerror(rc));
	for (i = 0; rc == 0 && i < n; i++) {
		if (results[i].error != 0 || results[i].status != (i % 2 ? VERIFYD_STATUS_OK : VERIFYD_STATUS_FORBIDDEN) ||
			!(t->subject ? str_eq(results[i].subject, t->subject) : results[i].subject.len > 0)) {
			failf(__LINE__, "batch of 5000: result %zu: error %d status %d", i, results[i].error,
				results[i].status);
			break;
		}
	}
	ok("batch of 5000 in rounds of max_in_flight");
	free(reqs);
	free(results);

	verifyd_close(c);

	rc = verifyd_connect("/nonexistent/verifyd.sock", 1000, &bad);
	CHECK(rc == -ENOENT && bad == NULL, "connect to a missing socket: %d %s", rc, verifyd_strerror(rc));
	ok("connect to a missing socket: -ENOENT");

	if (failures == failed_before)
		ok("real server");
}

/* The hostile server. */

static unsigned char *big; /* scratch for frames, BIG bytes */
#define BIG (1 << 20)

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static size_t header(unsigned char *p, size_t len, unsigned op, uint64_t id)
{
	put32(p, (uint32_t)len);
	p[4] = 1;
	p[5] = (unsigned char)op;
	put16(p + 6, 0);
	put64(p + 8, id);
	return 16;
}

static size_t hello_ok(unsigned char *p, uint64_t id, unsigned version, uint32_t max_frame, uint32_t in_flight)
{
	header(p, 40, VERIFYD_OP_HELLO_OK, id);
	put16(p + 16, version);
	put16(p + 18, 0);
	put32(p + 20, max_frame);
	put32(p + 24, in_flight);
	put32(p + 28, 8192);
	put32(p + 32, 1024);
	put32(p + 36, 300000);
	return 40;
}

/* result encodes a VERIFY_RESULT with the given subject, kind "api_key" and roles. */
static size_t result(unsigned char *p, uint64_t id, unsigned status, const char *subject, size_t subject_len,
	const char *const *roles, size_t nroles)
{
	static const char kind[] = "api_key";
	size_t off = 48, i, klen = strlen(kind);
	p[16] = (unsigned char)status;
	p[17] = 0;
	put16(p + 18, (unsigned)nroles);
	put32(p + 20, 5000);
	put64(p + 24, (uint64_t)1700000000000LL);
	put16(p + 32, (unsigned)subject_len);
	put16(p + 34, (unsigned)klen);
	put16(p + 36, 0);
	put16(p + 38, 0);
	put16(p + 40, 0);
	put16(p + 42, 0);
	put32(p + 44, 0);
	memcpy(p + off, subject, subject_len);
	off += subject_len;
	memcpy(p + off, kind, klen);
	off += klen;
	for (i = 0; i < nroles; i++) {
		size_t n = strlen(roles[i]);
		put16(p + off, (unsigned)n);
		memcpy(p + off + 2, roles[i], n);
		off += 2 + n;
	}
	header(p, off, VERIFYD_OP_VERIFY_RESULT, id);
	return off;
}

static size_t error_frame(unsigned char *p, uint64_t id, unsigned code, const char *msg)
{
	size_t n = strlen(msg);
	header(p, 24 + n, VERIFYD_OP_ERROR, id);
	put16(p + 16, code);
	put16(p + 18, (unsigned)n);
	put32(p + 20, 0);
	memcpy(p + 24, msg, n);
	return 24 + n;
}

static void send_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the client is gone: fine for a hostile server */
		p += w;
		n -= (size_t)w;
	}
}

static int read_full(int fd, unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* read_request reads one frame from the client and returns its request id, or 0 at EOF; *op gets its opcode. */
static uint64_t read_request(int fd, unsigned *op)
{
	static unsigned char buf[64 * 1024];
	unsigned char h[16];
	uint32_t len;
	if (read_full(fd, h, 16) != 0)
		return 0;
	len = get32(h);
	*op = h[5];
	if (len < 16 || len - 16 > sizeof buf || read_full(fd, buf, len - 16) != 0)
		return 0;
	return get64(h + 8);
}

/* greet reads HELLO and answers a valid HELLO_OK. */
static void greet(int fd, uint32_t max_frame, uint32_t in_flight)
{
	unsigned char p[40];
	unsigned op = 0;
	uint64_t id = read_request(fd, &op);
	if (op == VERIFYD_OP_HELLO)
		send_all(fd, p, hello_ok(p, id, 1, max_frame, in_flight));
}

static void wait_eof(int fd)
{
	unsigned char b[4096];
	while (read(fd, b, sizeof b) > 0 || errno == EINTR)
		errno = 0;
}

static volatile sig_atomic_t signals;

static void on_signal(int sig)
{
	(void)sig;
	signals++;
}

static const char *const two_roles[] = {"publisher", "reader"};

/* A case: serve runs in the server child for one connection, check in the client. */
struct hostile {
	const char *name;
	void (*serve)(int fd, int i);
	void (*check)(const char *path, int i);
};

/* Connect-stage cases. */

static void serve_hello_crafted(int fd, int i)
{
	unsigned char p[64];
	unsigned op;
	uint64_t id = read_request(fd, &op);
	size_t n = hello_ok(p, id, 1, 16384, 128);
	switch (i) {
	case 0: /* a version the client does not speak */
		put16(p + 16, 2);
		break;
	case 1: /* reserved set */
		put16(p + 18, 1);
		break;
	case 2: /* max_in_flight 0 */
		put32(p + 24, 0);
		break;
	case 3: /* another request id */
		put64(p + 8, id + 1);
		break;
	case 4: /* a PONG instead */
		n = header(p, 16, VERIFYD_OP_PONG, id);
		break;
	case 5: /* a length beyond any frame */
		put32(p, 0xffffffffu);
		break;
	case 6: /* a body one byte short */
		put32(p, 39);
		n = 39;
		break;
	case 7: /* ERROR unsupported_version */
		n = error_frame(p, 0, VERIFYD_ERR_UNSUPPORTED_VERSION, "no");
		break;
	case 8: /* ERROR shutting_down */
		n = error_frame(p, id, VERIFYD_ERR_SHUTTING_DOWN, "draining");
		break;
	default: /* close without a word */
		n = 0;
	}
	send_all(fd, p, n);
}

static void check_hello_crafted(const char *path, int i)
{
	static const int want[] = {
		VERIFYD_EVERSION, VERIFYD_EPROTO, VERIFYD_EPROTO, VERIFYD_EPROTO, VERIFYD_EPROTO,
		VERIFYD_EPROTO, VERIFYD_EPROTO, VERIFYD_EVERSION, VERIFYD_ESERVER, VERIFYD_ECLOSED,
	};
	verifyd_conn *c = NULL;
	int rc = verifyd_connect(path, 5000, &c);
	CHECK(rc == want[i] && c == NULL, "hello case %d: %d (%s), want %d", i, rc, verifyd_strerror(rc), want[i]);
	verifyd_close(c);
}

/* Verify-stage cases: a valid HELLO_OK, then a crafted answer to one VERIFY. */

static void serve_answer_crafted(int fd, int i)
{
	unsigned char *p = big;
	unsigned op;
	uint64_t id;
	size_t n;
	greet(fd, 16384, 128);
	id = read_request(fd, &op);
	n = result(p, id, VERIFYD_STATUS_OK, "alice", 5, two_roles, 2);
	switch (i) {
	case 0: /* valid */
		break;
	case 1: /* role length past the body */
		put16(p + n - 8, 7);
		break;
	case 2: /* subject length past the body */
		put16(p + 32, 0xffff);
		break;
	case 3: /* a byte after the last role */
		p[n] = 0;
		put32(p, (uint32_t)(n + 1));
		n++;
		break;
	case 4: /* one role fewer than announced */
		put16(p + 18, 3);
		break;
	case 5: /* another request id */
		put64(p + 8, id + 7);
		break;
	case 6: /* request id 0 */
		put64(p + 8, 0);
		break;
	case 7: /* PONG for a VERIFY */
		n = header(p, 16, VERIFYD_OP_PONG, id);
		break;
	case 8: /* HELLO_OK again */
		n = hello_ok(p, id, 1, 16384, 128);
		break;
	case 9: /* a request opcode */
		p[5] = VERIFYD_OP_VERIFY;
		break;
	case 10: /* an unknown opcode */
		p[5] = 99;
		break;
	case 11: /* flags */
		put16(p + 6, 1);
		break;
	case 12: /* version */
		p[4] = 2;
		break;
	case 13: /* reserved0 */
		p[17] = 1;
		break;
	case 14: /* reserved1 */
		put32(p + 44, 1);
		break;
	case 15: /* beyond the longest answer: refused from the header alone */
		put32(p, VERIFYD_MAX_ANSWER_BYTES + 1);
		n = 16;
		break;
	case 16: /* length below the header */
		put32(p, 15);
		n = 16;
		break;
	case 17: /* zero length */
		put32(p, 0);
		n = 16;
		break;
	case 18: /* half a frame, then close */
		n /= 2;
		break;
	case 19: /* ERROR for the stream */
		n = error_frame(p, 0, VERIFYD_ERR_BAD_FRAME, "bad frame");
		break;
	case 20: /* ERROR with a message that overruns the body */
		n = error_frame(p, id, VERIFYD_ERR_TOKEN_TOO_LONG, "x");
		put16(p + 18, 500);
		break;
	case 21: /* ERROR with reserved set */
		n = error_frame(p, id, VERIFYD_ERR_TOKEN_TOO_LONG, "x");
		put32(p + 20, 1);
		break;
	case 22: /* a stream-level code this client does not know */
		n = error_frame(p, id, 4000, "new");
		break;
	case 23: /* a status the client does not know: passed through */
		p[16] = 200;
		break;
	case 24: /* an unknown status with strings: passed through too */
		n = result(p, id, 3, "alice", 5, NULL, 0);
		break;
	case 25: /* the longest answer: 48 bytes, the subject, kind "api_key" */
		{
			static char s[VERIFYD_MAX_ANSWER_BYTES - 48 - 7];
			memset(s, 's', sizeof s);
			n = result(p, id, VERIFYD_STATUS_OK, s, sizeof s, NULL, 0);
		}
		break;
	case 27: /* a PONG header announcing a body, and no body: refused without waiting */
		n = header(p, 100, VERIFYD_OP_PONG, id);
		break;
	case 26: /* one byte longer */
		{
			static char s[VERIFYD_MAX_ANSWER_BYTES - 48 - 7 + 1];
			memset(s, 's', sizeof s);
			n = result(p, id, VERIFYD_STATUS_OK, s, sizeof s, NULL, 0);
		}
		break;
	}
	send_all(fd, p, n);
	if (i == 0 || i == 23 || i == 24 || i == 25 || i == 27)
		wait_eof(fd);
}

static void check_answer_crafted(const char *path, int i)
{
	verifyd_conn *c = NULL;
	verifyd_result r;
	int rc = verifyd_connect(path, 5000, &c), want;
	if (rc != 0) {
		failf(__LINE__, "answer case %d: connect: %d %s", i, rc, verifyd_strerror(rc));
		return;
	}
	rc = verifyd_verify(c, "tok", 3, "a:b", 3, &r);
	switch (i) {
	case 0:
		CHECK(rc == 0 && r.status == 0 && str_eq(r.subject, "alice") && str_eq(r.kind, "api_key") &&
				r.key_id.len == 0 && r.role_count == 2 && verifyd_has_role(&r, "reader", 6) &&
				verifyd_has_role(&r, "publisher", 9) && !verifyd_has_role(&r, "read", 4) &&
				r.cache_ttl_ms == 5000 && r.expires_at_ms == 1700000000000LL,
			"answer case 0: valid answer misread: rc %d", rc);
		check_roles(&r, "answer case 0");
		verifyd_close(c);
		return;
	case 23:
	case 24:
		CHECK(rc == 0 && r.status == (i == 23 ? 200 : 3) &&
				strcmp(verifyd_status_name(r.status), i == 23 ? "invalid" : "expired") == 0,
			"answer case %d: rc %d status %d", i, rc, r.status);
		verifyd_close(c);
		return;
	case 25:
		CHECK(rc == 0 && r.subject.len == VERIFYD_MAX_ANSWER_BYTES - 55 && r.subject.ptr[r.subject.len - 1] == 's',
			"answer case 25: rc %d", rc);
		verifyd_close(c);
		return;
	case 18:
		want = VERIFYD_ECLOSED;
		break;
	case 19:
	case 22:
		want = VERIFYD_ESERVER;
		break;
	default:
		want = VERIFYD_EPROTO;
	}
	CHECK(rc == want && r.error == 0 && r.subject.len == 0 && r.role_count == 0,
		"answer case %d: %d (%s), want %d", i, rc, verifyd_strerror(rc), want);
	if (i == 19)
		CHECK(verifyd_last_server_error(c) == VERIFYD_ERR_BAD_FRAME &&
				strcmp(verifyd_last_server_message(c), "bad frame") == 0,
			"answer case 19: server error %d %s", verifyd_last_server_error(c), verifyd_last_server_message(c));
	CHECK(verifyd_broken(c) == want, "answer case %d: verifyd_broken %d, want %d", i, verifyd_broken(c), want);
	rc = verifyd_ping(c);
	CHECK(rc == VERIFYD_EBROKEN, "answer case %d: a call after a stream error: %d, want VERIFYD_EBROKEN", i, rc);
	verifyd_close(c);
}

/* Request-level ERRORs leave the connection usable; SHUTTING_DOWN does not. */

static void serve_request_errors(int fd, int i)
{
	unsigned char *p = big;
	unsigned op;
	uint64_t id;
	(void)i;
	greet(fd, 16384, 128);
	id = read_request(fd, &op);
	send_all(fd, p, error_frame(p, id, VERIFYD_ERR_SCOPE_TOO_LONG, "scope too long"));
	id = read_request(fd, &op);
	send_all(fd, p, result(p, id, VERIFYD_STATUS_FORBIDDEN, "bob", 3, NULL, 0));
	id = read_request(fd, &op);
	send_all(fd, p, error_frame(p, id, VERIFYD_ERR_SHUTTING_DOWN, "draining"));
	wait_eof(fd);
}

static void check_request_errors(const char *path, int i)
{
	verifyd_conn *c = NULL;
	verifyd_result r;
	int rc = verifyd_connect(path, 5000, &c);
	(void)i;
	if (rc != 0) {
		failf(__LINE__, "request errors: connect: %d", rc);
		return;
	}
	rc = verifyd_verify(c, "tok", 3, "a:b", 3, &r);
	CHECK(rc == VERIFYD_ESERVER && r.error == VERIFYD_ESERVER && r.server_error == VERIFYD_ERR_SCOPE_TOO_LONG &&
			verifyd_last_server_error(c) == VERIFYD_ERR_SCOPE_TOO_LONG &&
			strcmp(verifyd_last_server_message(c), "scope too long") == 0,
		"request error: %d server_error %d", rc, r.server_error);
	CHECK(verifyd_broken(c) == 0, "broken after a request-level error");
	rc = verifyd_verify(c, "tok", 3, "a:b", 3, &r);
	CHECK(rc == 0 && r.status == VERIFYD_STATUS_FORBIDDEN && str_eq(r.subject, "bob"),
		"after a request error: %d status %d", rc, r.status);
	rc = verifyd_verify(c, "tok", 3, "a:b", 3, &r);
	CHECK(rc == VERIFYD_ESERVER && r.server_error == VERIFYD_ERR_SHUTTING_DOWN, "shutting down: %d", rc);
	rc = verifyd_ping(c);
	CHECK(rc == VERIFYD_EBROKEN, "after shutting down: %d, want VERIFYD_EBROKEN", rc);
	verifyd_close(c);
}

/* No answer: the call times out, the connection is unusable after. */

static void serve_silent(int fd, int i)
{
	(void)i;
	greet(fd, 16384, 128);
	wait_eof(fd);
}

static void check_silent(const char *path, int i)
{
	verifyd_conn *c = NULL;
	verifyd_result r;
	struct timespec t0, t1;
	long ms;
	int rc = verifyd_connect(path, 300, &c);
	(void)i;
	if (rc != 0) {
		failf(__LINE__, "silent: connect: %d", rc);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = verifyd_verify(c, "tok", 3, "", 0, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(rc == -ETIMEDOUT && ms >= 290 && ms < 5000, "silent server: %d (%s) after %ld ms", rc, verifyd_strerror(rc),
		ms);
	CHECK(verifyd_ping(c) == VERIFYD_EBROKEN, "a call after a timeout is not VERIFYD_EBROKEN");
	verifyd_close(c);
}

/* A valid answer dripped one byte per write under a storm of signals. */

static void serve_drip(int fd, int i)
{
	unsigned char *p = big;
	unsigned op;
	uint64_t id;
	size_t n, k;
	struct timespec pause = {0, 200000};
	(void)i;
	greet(fd, 16384, 128);
	id = read_request(fd, &op);
	n = result(p, id, VERIFYD_STATUS_OK, "dripped", 7, two_roles, 2);
	for (k = 0; k < n; k++) {
		kill(getppid(), SIGUSR1);
		nanosleep(&pause, NULL);
		send_all(fd, p + k, 1);
	}
	wait_eof(fd);
}

static void check_drip(const char *path, int i)
{
	verifyd_conn *c = NULL;
	verifyd_result r;
	struct sigaction sa, old;
	int rc;
	(void)i;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: every wait is interrupted */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	signals = 0;
	rc = verifyd_connect(path, 10000, &c);
	if (rc == 0)
		rc = verifyd_verify(c, "tok", 3, "a:b", 3, &r);
	CHECK(rc == 0 && str_eq(r.subject, "dripped") && r.role_count == 2, "dripped answer: %d (%s)", rc,
		verifyd_strerror(rc));
	CHECK(signals > 10, "only %d signals arrived", (int)signals);
	verifyd_close(c);
	sigaction(SIGUSR1, &old, NULL);
}

/*
 * Pipelining: answers in reverse order; then long requests answered with
 * long answers one by one, which deadlocks unless the client reads while it
 * writes; then protocol errors within a batch.
 */

#define PIPE_N 64

static void serve_pipeline(int fd, int i)
{
	static uint64_t ids[PIPE_N];
	static char subject[40000];
	unsigned char *p = big;
	unsigned op;
	size_t k, n;
	(void)i;
	greet(fd, 65536, PIPE_N);
	/* Round 1: all requests first, then the answers in reverse. */
	for (k = 0; k < PIPE_N; k++)
		ids[k] = read_request(fd, &op);
	for (k = PIPE_N; k-- > 0;) {
		char s[32];
		snprintf(s, sizeof s, "s%llu", (unsigned long long)ids[k]);
		n = result(p, ids[k], VERIFYD_STATUS_OK, s, strlen(s), NULL, 0);
		send_all(fd, p, n);
	}
	/* Round 2: 64 requests of 8 KiB, each answered at once with 40 KB. */
	memset(subject, 'x', sizeof subject);
	for (k = 0; k < PIPE_N; k++) {
		uint64_t id = read_request(fd, &op);
		n = result(p, id, VERIFYD_STATUS_OK, subject, sizeof subject, two_roles, 2);
		send_all(fd, p, n);
	}
	/* Round 3: one answer twice. */
	for (k = 0; k < PIPE_N; k++)
		ids[k] = read_request(fd, &op);
	n = result(p, ids[3], VERIFYD_STATUS_OK, "a", 1, NULL, 0);
	send_all(fd, p, n);
	send_all(fd, p, n);
	wait_eof(fd);
}

static void check_pipeline(const char *path, int i)
{
	static verifyd_request reqs[PIPE_N];
	static verifyd_result results[PIPE_N];
	static char token[8000];
	verifyd_conn *c = NULL;
	uint64_t first = 0;
	size_t k;
	int rc = verifyd_connect(path, 10000, &c);
	(void)i;
	if (rc != 0) {
		failf(__LINE__, "pipeline: connect: %d", rc);
		return;
	}
	for (k = 0; k < PIPE_N; k++) {
		reqs[k].token = "tok";
		reqs[k].token_len = 3;
		reqs[k].scope = "";
		reqs[k].scope_len = 0;
	}
	rc = verifyd_verify_batch(c, reqs, PIPE_N, results);
	CHECK(rc == 0, "reverse order: %d (%s)", rc, verifyd_strerror(rc));
	/* Ids are consecutive: the subjects name them. */
	if (rc == 0 && results[0].subject.len > 1)
		first = strtoull(results[0].subject.ptr + 1, NULL, 10);
	for (k = 0; rc == 0 && k < PIPE_N; k++) {
		char s[32];
		snprintf(s, sizeof s, "s%llu", (unsigned long long)(first + k));
		CHECK(results[k].error == 0 && str_eq(results[k].subject, s), "reverse order: result %zu is %.*s, want %s",
			k, (int)results[k].subject.len, results[k].subject.ptr, s);
	}

	memset(token, 't', sizeof token);
	for (k = 0; k < PIPE_N; k++) {
		reqs[k].token = token;
		reqs[k].token_len = sizeof token;
	}
	rc = verifyd_verify_batch(c, reqs, PIPE_N, results);
	CHECK(rc == 0, "long requests and answers: %d (%s)", rc, verifyd_strerror(rc));
	for (k = 0; rc == 0 && k < PIPE_N; k++)
		CHECK(results[k].subject.len == 40000 && results[k].subject.ptr[39999] == 'x' && results[k].role_count == 2 &&
				verifyd_has_role(&results[k], "reader", 6),
			"long answer %zu misread", k);

	rc = verifyd_verify_batch(c, reqs, PIPE_N, results);
	CHECK(rc == VERIFYD_EPROTO, "an answer twice: %d (%s), want VERIFYD_EPROTO", rc, verifyd_strerror(rc));
	verifyd_close(c);
}

/* Randomly mutated answers: any outcome but a crash or a sanitizer report. */

#define FUZZ_N 400

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void serve_fuzz(int fd, int i)
{
	unsigned char *p = big;
	unsigned op;
	uint64_t id;
	size_t n, flips, k;
	rng_state = 0x9e3779b97f4a7c15ULL + (uint64_t)i;
	greet(fd, 16384, 128);
	id = read_request(fd, &op);
	switch (rng() % 3) {
	case 0:
		n = result(p, id, rng() % 13, "alice", 5, two_roles, 2);
		break;
	case 1:
		n = error_frame(p, rng() % 2 ? id : 0, (unsigned)(rng() % 12), "err");
		break;
	default:
		n = result(p, id, VERIFYD_STATUS_OK, "", 0, NULL, 0);
	}
	flips = 1 + rng() % 4;
	for (k = 0; k < flips; k++) {
		size_t at = rng() % (n + 2);
		if (at >= n) { /* grow or cut the frame */
			n = rng() % 2 ? n + rng() % 8 : (n > 1 ? n - 1 - rng() % (n - 1) : n);
			continue;
		}
		p[at] = at < 8 || rng() % 2 ? (unsigned char)(p[at] ^ (1u << (rng() % 8))) : (unsigned char)rng();
	}
	send_all(fd, p, n);
}

static void check_fuzz(const char *path, int i)
{
	static int accepted, refused;
	verifyd_conn *c = NULL;
	verifyd_result r;
	int rc = verifyd_connect(path, 2000, &c);
	if (rc != 0) {
		failf(__LINE__, "fuzz %d: connect: %d", i, rc);
		return;
	}
	rc = verifyd_verify(c, "tok", 3, "a:b", 3, &r);
	if (rc == 0) {
		size_t total = r.subject.len + r.kind.len + r.key_id.len + r.grant.len + r.source.len + r.realm.len;
		CHECK(total < VERIFYD_MAX_ANSWER_BYTES, "fuzz %d: strings of %zu bytes", i, total);
		check_roles(&r, "fuzz");
		accepted++;
	} else {
		CHECK(rc == VERIFYD_EPROTO || rc == VERIFYD_ECLOSED || rc == VERIFYD_ESERVER,
			"fuzz %d: unexpected %d (%s)", i, rc, verifyd_strerror(rc));
		refused++;
	}
	verifyd_close(c);
	if (i == FUZZ_N - 1)
		printf("   %d mutated answers accepted as valid, %d refused\n", accepted, refused);
}

static const struct hostile cases[] = {
	{"connect: HELLO_OK refused or missing", serve_hello_crafted, check_hello_crafted},
	{"verify: crafted answers", serve_answer_crafted, check_answer_crafted},
	{"request-level ERRORs", serve_request_errors, check_request_errors},
	{"timeout", serve_silent, check_silent},
	{"answer dripped under signals (EINTR, partial reads)", serve_drip, check_drip},
	{"pipelining: out of order, read while writing, duplicates", serve_pipeline, check_pipeline},
	{"randomly mutated answers", serve_fuzz, check_fuzz},
};
static const int case_runs[] = {10, 28, 1, 1, 1, 1, FUZZ_N};

static void run_server(int lfd)
{
	size_t k;
	int i;
	for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		for (i = 0; i < case_runs[k]; i++) {
			int fd = accept(lfd, NULL, NULL);
			if (fd < 0) {
				if (errno == EINTR) {
					i--;
					continue;
				}
				_exit(3);
			}
			cases[k].serve(fd, i);
			close(fd);
		}
	}
	_exit(0);
}

static void test_hostile(void)
{
	char dir[] = "/tmp/vdtestXXXXXX", path[sizeof dir + 16];
	struct sockaddr_un sa;
	int lfd, status = 0, failed_before = failures;
	pid_t pid;
	size_t k;
	int i;

	big = malloc(BIG);
	if (big == NULL || mkdtemp(dir) == NULL) {
		failf(__LINE__, "hostile server setup: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/s", dir);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 16) != 0) {
		failf(__LINE__, "hostile server: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		failf(__LINE__, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		run_server(lfd);
	}
	close(lfd);
	for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		int before = failures;
		for (i = 0; i < case_runs[k]; i++)
			cases[k].check(path, i);
		if (failures == before)
			ok(cases[k].name);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "hostile server exited with status %d", status);
	unlink(path);
	rmdir(dir);
	free(big);
	if (failures == failed_before)
		ok("hostile server");
}

static void test_names(void)
{
	CHECK(strcmp(verifyd_status_name(VERIFYD_STATUS_FORBIDDEN), "forbidden") == 0 &&
			strcmp(verifyd_status_name(VERIFYD_STATUS_INVALID_CLAIMS), "invalid_claims") == 0 &&
			strcmp(verifyd_status_name(VERIFYD_STATUS_RATE_LIMITED), "rate_limited") == 0 &&
			strcmp(verifyd_status_name(13), "invalid") == 0 && strcmp(verifyd_status_name(-1), "invalid") == 0,
		"verifyd_status_name");
	CHECK(strcmp(verifyd_error_code_name(VERIFYD_ERR_BAD_FRAME), "bad_frame") == 0 &&
			strcmp(verifyd_error_code_name(VERIFYD_ERR_SCOPE_TOO_LONG), "scope_too_long") == 0 &&
			strcmp(verifyd_error_code_name(0), "invalid") == 0,
		"verifyd_error_code_name");
	CHECK(strstr(verifyd_strerror(VERIFYD_ETOOLONG), "limits") != NULL &&
			strstr(verifyd_strerror(-ETIMEDOUT), "timed out") != NULL && verifyd_strerror(-12345) != NULL,
		"verifyd_strerror");
	CHECK(verifyd_connect(NULL, 0, NULL) == -EINVAL, "connect with NULL arguments");
	ok("names and argument checks");
}

int main(int argc, char **argv)
{
	struct real t;
	signal(SIGPIPE, SIG_DFL); /* the client must not raise it */
	test_names();
	if (argc > 1 && strcmp(argv[1], "--hostile") == 0) {
		test_hostile();
	} else {
		t.socket = arg(argc, argv, 1, "VERIFYD_SOCKET");
		t.token = arg(argc, argv, 2, "VERIFYD_TEST_TOKEN");
		t.scope = arg(argc, argv, 3, "VERIFYD_TEST_SCOPE");
		t.forbidden = arg(argc, argv, 4, "VERIFYD_TEST_FORBIDDEN_SCOPE");
		t.unknown = arg(argc, argv, 5, "VERIFYD_TEST_UNKNOWN_TOKEN");
		t.subject = arg(argc, argv, 6, "VERIFYD_TEST_SUBJECT");
		t.role = arg(argc, argv, 7, "VERIFYD_TEST_ROLE");
		if (!t.socket || !t.token || !t.scope || !t.forbidden || !t.unknown) {
			fprintf(stderr, "usage: verifyd_test SOCKET TOKEN SCOPE FORBIDDEN_SCOPE UNKNOWN_TOKEN [SUBJECT [ROLE]]\n"
				"       verifyd_test --hostile\n"
				"(each argument may come from the environment instead; see the source)\n");
			return 2;
		}
		test_real(&t);
		test_hostile();
	}
	if (failures > 0) {
		printf("FAILED: %d checks\n", failures);
		return 1;
	}
	printf("ok all\n");
	return 0;
}
