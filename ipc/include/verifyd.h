/*
 * verifyd.h - the verifyd Unix socket protocol, version 1, and the C client.
 *
 * This header is the ABI: every frame on the socket is laid out exactly as
 * the structs below, little-endian, with no padding (each struct is sized
 * and aligned so that its natural layout has none; a test checks every size
 * and offset against the Go codec). ipc/PROTOCOL.md is the normative prose.
 *
 * A frame never changes meaning within a version. Fields named reserved
 * are zero when sent; a receiver refuses a frame whose reserved fields or
 * header flags are not zero.
 */
#ifndef VERIFYD_H
#define VERIFYD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VERIFYD_PROTOCOL_VERSION 1

/* Opcodes. Requests come from the client, answers from the server. */
enum verifyd_opcode {
	VERIFYD_OP_HELLO = 1,         /* request: version negotiation */
	VERIFYD_OP_HELLO_OK = 2,      /* answer to HELLO: the version and the server's limits */
	VERIFYD_OP_VERIFY = 3,        /* request: a token and a scope */
	VERIFYD_OP_VERIFY_RESULT = 4, /* answer to VERIFY */
	VERIFYD_OP_PING = 5,          /* request: liveness */
	VERIFYD_OP_PONG = 6,          /* answer to PING */
	VERIFYD_OP_ERROR = 7          /* answer: the request (or the stream) was refused */
};

/*
 * Every frame starts with a header. length counts the whole frame, header
 * included, so it is at least sizeof(struct verifyd_header). request_id is
 * chosen by the client and echoed in the answer; answers may come back in
 * any order.
 */
struct verifyd_header {
	uint32_t length;
	uint8_t version;    /* VERIFYD_PROTOCOL_VERSION */
	uint8_t opcode;     /* enum verifyd_opcode */
	uint16_t flags;     /* 0 in version 1 */
	uint64_t request_id;
};

/* HELLO: the header, then this. Optional: a client may send VERIFY first. */
struct verifyd_hello {
	uint16_t min_version; /* the oldest version the client speaks */
	uint16_t max_version; /* the newest */
	uint32_t reserved;
};

/* HELLO_OK: the header, then this. */
struct verifyd_hello_ok {
	uint16_t version;          /* the version this connection uses */
	uint16_t reserved;
	uint32_t max_frame_bytes;  /* the longest frame the server accepts */
	uint32_t max_in_flight;    /* requests a client may have unanswered on one connection */
	uint32_t max_token_bytes;  /* the longest token */
	uint32_t max_scope_bytes;  /* the longest scope */
	uint32_t idle_timeout_ms;  /* a connection idle this long is closed */
};

/*
 * VERIFY: the header, then this, then token_len bytes of token, then
 * scope_len bytes of scope (scope_len 0: authenticate only). length must be
 * exactly the sum.
 */
struct verifyd_verify {
	uint32_t token_len;
	uint32_t scope_len;
};

/*
 * VERIFY_RESULT: the header, then this, then the strings subject, kind,
 * key_id, grant, source and realm (UTF-8, not NUL-terminated, in this order,
 * of the lengths given), then role_count roles, each a uint16_t length
 * followed by that many bytes. length must be exactly the sum.
 *
 * status is verify's reason code (VERIFYD_STATUS_*). The strings are empty
 * unless the credential was found valid (status OK or FORBIDDEN).
 */
struct verifyd_verify_result {
	uint8_t status;
	uint8_t reserved0;
	uint16_t role_count;
	uint32_t cache_ttl_ms;    /* how long the caller may reuse this answer; 0: not at all */
	int64_t expires_at_ms;    /* Unix milliseconds when the credential stops working; 0: never */
	uint16_t subject_len;
	uint16_t kind_len;
	uint16_t key_id_len;
	uint16_t grant_len;
	uint16_t source_len;
	uint16_t realm_len;
	uint32_t reserved1;
};

/* Status codes of VERIFY_RESULT: verify's reason table. Stable. */
enum verifyd_status {
	VERIFYD_STATUS_OK = 0,
	VERIFYD_STATUS_MALFORMED = 1,
	VERIFYD_STATUS_UNKNOWN = 2,
	VERIFYD_STATUS_EXPIRED = 3,
	VERIFYD_STATUS_REVOKED = 4,
	VERIFYD_STATUS_FORBIDDEN = 5,
	VERIFYD_STATUS_UNAVAILABLE = 6,
	VERIFYD_STATUS_INVALID_SCOPE = 7,
	VERIFYD_STATUS_BAD_SIGNATURE = 8,
	VERIFYD_STATUS_NOT_YET_VALID = 9,
	VERIFYD_STATUS_UNTRUSTED_KEY = 10,
	VERIFYD_STATUS_INVALID_CLAIMS = 11,
	VERIFYD_STATUS_RATE_LIMITED = 12
};

/* PING and PONG: the header alone. */

/*
 * ERROR: the header, then this, then message_len bytes of UTF-8 text for
 * people. request_id is the refused request's, or 0 when the stream itself
 * is bad; after an error with a stream-level code the server closes the
 * connection.
 */
struct verifyd_error {
	uint16_t code;        /* enum verifyd_error_code */
	uint16_t message_len;
	uint32_t reserved;
};

/* Error codes. Stable. */
enum verifyd_error_code {
	VERIFYD_ERR_BAD_FRAME = 1,           /* stream: the frame's lengths are inconsistent, or reserved bits are set */
	VERIFYD_ERR_FRAME_TOO_LARGE = 2,     /* stream: length is beyond max_frame_bytes */
	VERIFYD_ERR_FRAME_TOO_SMALL = 3,     /* stream: length is below the header size (zero included) */
	VERIFYD_ERR_UNSUPPORTED_VERSION = 4, /* stream: a version the server does not speak */
	VERIFYD_ERR_UNKNOWN_OPCODE = 5,      /* stream: an opcode the server does not know, or an answer opcode */
	VERIFYD_ERR_TOO_MANY_IN_FLIGHT = 6,  /* stream: more than max_in_flight requests unanswered */
	VERIFYD_ERR_TRUNCATED = 7,           /* stream: the connection ended, or stalled past the read deadline, inside a frame */
	VERIFYD_ERR_SHUTTING_DOWN = 8,       /* the server is draining; reconnect elsewhere or later */
	VERIFYD_ERR_TOKEN_TOO_LONG = 9,      /* request: token_len is beyond max_token_bytes */
	VERIFYD_ERR_SCOPE_TOO_LONG = 10      /* request: scope_len is beyond max_scope_bytes */
};

/*
 * The C client (ipc/c/verifyd.c).
 *
 * Plain C99 and POSIX, no dependency beyond libc; see ipc/c/README.md for
 * building and linking. Every function that can fail returns 0 on success
 * and a negative code on failure: either a negated errno value (-ENOENT,
 * -ECONNREFUSED, -ETIMEDOUT, -EINVAL, -ENOMEM, ...) or one of
 * enum verifyd_client_error below. verifyd_strerror names both. The client
 * never prints, never raises SIGPIPE and keeps no global state.
 *
 * Thread safety: a verifyd_conn is not safe for concurrent use. Use one
 * connection per thread, or serialize the calls on a connection with a lock
 * held across the call and the use of its results. Distinct connections are
 * independent.
 *
 * Timeouts: the timeout_ms given to verifyd_connect bounds each call as a
 * whole (the connect itself with its HELLO exchange, each verifyd_verify,
 * each verifyd_ping, and each round of verifyd_verify_batch), waiting with
 * poll(2); EINTR is retried, partial reads and writes are resumed.
 *
 * Stream-level errors: a timeout, an I/O error, the server closing the
 * connection, a frame from the server that fails validation
 * (VERIFYD_EPROTO), or an ERROR frame that refuses the stream (request id
 * 0, or any code but VERIFYD_ERR_SHUTTING_DOWN, VERIFYD_ERR_TOKEN_TOO_LONG
 * and VERIFYD_ERR_SCOPE_TOO_LONG) leave the connection unusable: every
 * later call returns VERIFYD_EBROKEN, and the caller closes it and
 * connects again. The request-level errors VERIFYD_ETOOLONG and
 * VERIFYD_ESERVER with VERIFYD_ERR_TOKEN_TOO_LONG or
 * VERIFYD_ERR_SCOPE_TOO_LONG leave it usable; VERIFYD_ERR_SHUTTING_DOWN
 * (the server is draining and closes the connection next) makes it
 * unusable once the call returns.
 *
 * Validation: every frame received is checked as strictly as the server
 * checks a client's frames: the length within 16..VERIFYD_MAX_ANSWER_BYTES,
 * the version, zero flags and reserved fields, an answer opcode, lengths
 * that add up exactly, and a request id that names a request written on
 * this connection and not answered yet, with the answer opcode that suits
 * it. Anything else is VERIFYD_EPROTO. A server cannot make the client read
 * or write out of bounds, or allocate beyond the bounds stated here.
 */

/* A connection to verifyd. Opaque; see verifyd_connect. */
typedef struct verifyd_conn verifyd_conn;

/*
 * Error codes of the client, returned negated like errno values but outside
 * errno's range. Stable.
 */
enum verifyd_client_error {
	VERIFYD_ESERVER = -1001,  /* the server answered with an ERROR frame: see verifyd_last_server_error */
	VERIFYD_EPROTO = -1002,   /* the server sent a frame the protocol does not allow; the connection is unusable */
	VERIFYD_ECLOSED = -1003,  /* the server closed the connection; it is unusable */
	VERIFYD_ETOOLONG = -1004, /* token or scope beyond the server's limits: nothing was sent, the connection stays usable */
	VERIFYD_EBROKEN = -1005,  /* an earlier stream-level error made the connection unusable: close it */
	VERIFYD_EVERSION = -1006  /* verifyd_connect: the server speaks no version this client speaks */
};

/*
 * VERIFYD_MAX_ANSWER_BYTES is the longest frame a version 1 server sends;
 * the client refuses a longer one. The client's own bounds on what a
 * server's HELLO_OK may ask of it: a larger max_in_flight is used as
 * VERIFYD_CLIENT_MAX_IN_FLIGHT, and requests are sent up to the smaller of
 * max_frame_bytes and VERIFYD_CLIENT_MAX_FRAME bytes.
 */
#define VERIFYD_MAX_ANSWER_BYTES (64 * 1024)
#define VERIFYD_CLIENT_MAX_IN_FLIGHT 4096
#define VERIFYD_CLIENT_MAX_FRAME (1024 * 1024)

/*
 * A view of bytes held by the connection: not NUL-terminated, ptr never
 * NULL (an empty view points at an empty string). Print it with
 * printf("%.*s", (int)s.len, s.ptr).
 */
typedef struct verifyd_str {
	const char *ptr;
	size_t len;
} verifyd_str;

/* One request of verifyd_verify_batch. scope_len 0: authenticate only. */
typedef struct verifyd_request {
	const char *token;
	size_t token_len;
	const char *scope;
	size_t scope_len;
} verifyd_request;

/*
 * The answer to one VERIFY. When error is 0, status and the fields after it
 * hold the server's VERIFY_RESULT; otherwise they are zero and empty.
 *
 * Lifetime: the views (subject ... realm, and the roles) point into memory
 * owned by the connection. They stay valid until the next call on the same
 * connection (any call but the accessors verifyd_server_limits,
 * verifyd_broken, verifyd_last_server_error and
 * verifyd_last_server_message) or until
 * verifyd_close, whichever comes first. Copy what must outlive that.
 */
typedef struct verifyd_result {
	int error;              /* 0, VERIFYD_ESERVER (server_error says why) or VERIFYD_ETOOLONG (not sent) */
	int server_error;       /* with VERIFYD_ESERVER: the ERROR frame's enum verifyd_error_code; else 0 */
	int status;             /* enum verifyd_status, passed through as sent: anything but VERIFYD_STATUS_OK refuses */
	uint32_t cache_ttl_ms;  /* how long the caller may reuse this answer; 0: not at all */
	int64_t expires_at_ms;  /* Unix milliseconds when the credential stops working; 0: never */
	verifyd_str subject;    /* the strings are empty unless status is OK or FORBIDDEN */
	verifyd_str kind;
	verifyd_str key_id;
	verifyd_str grant;      /* the pattern that granted the scope (OK with a scope) */
	verifyd_str source;
	verifyd_str realm;
	size_t role_count;
	const unsigned char *roles; /* role_count entries, each a little-endian uint16_t length and the bytes: read them with verifyd_role_next */
	size_t roles_len;           /* bytes at roles */
} verifyd_result;

/*
 * verifyd_connect connects to the Unix socket at socket_path, sends HELLO
 * (version 1), reads HELLO_OK and keeps the server's limits. timeout_ms
 * bounds this call and every later call on the connection (see Timeouts
 * above); 0 or negative means no timeout. On success *out is the new
 * connection, to be released with verifyd_close. On failure *out is NULL
 * and the result is, for example, -ENOENT (no socket at the path),
 * -ECONNREFUSED (no server listening), -EACCES, -ENAMETOOLONG (the path
 * does not fit in sockaddr_un), -ETIMEDOUT, VERIFYD_EVERSION, or
 * VERIFYD_ESERVER (the server refused, for example while draining).
 * Allocates the connection's buffers (about 130 KiB with the server's
 * default limits); the calls that follow allocate nothing, except
 * verifyd_verify_batch as documented there.
 */
int verifyd_connect(const char *socket_path, int timeout_ms, verifyd_conn **out);

/* verifyd_close closes the socket and frees c and everything its results point into. NULL is a no-op. */
void verifyd_close(verifyd_conn *c);

/*
 * verifyd_verify asks whether token grants scope (scope_len 0:
 * authenticate only) and waits for the answer, filling *result. It returns
 * 0 when the server answered with a VERIFY_RESULT, whatever its status: a
 * denial is a result, check result->status. Otherwise it returns a
 * negative code, also stored in result->error when it concerns this
 * request alone: VERIFYD_ETOOLONG when token_len exceeds max_token_bytes,
 * scope_len exceeds max_scope_bytes or the frame would exceed
 * max_frame_bytes (nothing is sent; the connection stays usable), or
 * VERIFYD_ESERVER when the server refused the request (result->server_error
 * and verifyd_last_server_error say why). The views in *result are valid
 * until the next call on c. Allocates nothing.
 */
int verifyd_verify(verifyd_conn *c, const char *token, size_t token_len, const char *scope, size_t scope_len,
	verifyd_result *result);

/*
 * verifyd_verify_batch verifies reqs[0..n-1] pipelined and fills
 * results[0..n-1] in the same order. It writes up to max_in_flight
 * requests at once (in as few writes as the buffer allows), reads their
 * answers in whatever order the server sends them, places each by its
 * request id, and repeats in rounds until all n are answered. It returns 0
 * when every request got an answer; then each results[i].error is 0 (a
 * VERIFY_RESULT), VERIFYD_ETOOLONG (that request was not sent) or
 * VERIFYD_ESERVER (the server refused that request; once it answers
 * VERIFYD_ERR_SHUTTING_DOWN, the requests not sent yet get that too). A
 * negative result is a stream-level error: the connection is unusable and
 * the contents of results are unspecified. The views in results stay valid
 * until the next call on c. The answers of all n requests are kept in a
 * buffer the connection grows when a batch needs more room than any batch
 * before it (-ENOMEM if that fails); otherwise it allocates nothing.
 */
int verifyd_verify_batch(verifyd_conn *c, const verifyd_request *reqs, size_t n, verifyd_result *results);

/* verifyd_ping sends PING and waits for PONG. */
int verifyd_ping(verifyd_conn *c);

/*
 * verifyd_role_next iterates the roles of r. Set *pos to 0 before the
 * first call; each call that returns 1 sets *role to the next role, and 0
 * means there are no more.
 *
 *	size_t pos = 0;
 *	verifyd_str role;
 *	while (verifyd_role_next(&result, &pos, &role))
 *		use(role.ptr, role.len);
 */
int verifyd_role_next(const verifyd_result *r, size_t *pos, verifyd_str *role);

/* verifyd_has_role returns 1 if r carries the role role[0..role_len-1], else 0. */
int verifyd_has_role(const verifyd_result *r, const char *role, size_t role_len);

/*
 * verifyd_server_limits returns the HELLO_OK the server sent on connect:
 * the negotiated version and the server's limits, as the server stated
 * them. Valid until verifyd_close.
 */
const struct verifyd_hello_ok *verifyd_server_limits(const verifyd_conn *c);

/*
 * verifyd_broken returns 0 while c is usable, or the error that made it
 * unusable (see Stream-level errors above): then close it and connect
 * again.
 */
int verifyd_broken(const verifyd_conn *c);

/*
 * verifyd_last_server_error returns the code (enum verifyd_error_code) of
 * the last ERROR frame received on c, or 0 if none was.
 */
int verifyd_last_server_error(const verifyd_conn *c);

/*
 * verifyd_last_server_message returns the text of the last ERROR frame
 * received on c, NUL-terminated (cut at 255 bytes), or "" if none was.
 * Valid until the next call on c. It is meant for logs, not for decisions.
 */
const char *verifyd_last_server_message(const verifyd_conn *c);

/* verifyd_status_name returns the name of a status code ("ok", "forbidden", ...), or "invalid". */
const char *verifyd_status_name(int status);

/* verifyd_error_code_name returns the name of an ERROR frame code ("bad_frame", ...), or "invalid". */
const char *verifyd_error_code_name(int code);

/*
 * verifyd_strerror describes a result of this API: 0, a negated errno value
 * or a VERIFYD_E* code. The string is static.
 */
const char *verifyd_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* VERIFYD_H */
