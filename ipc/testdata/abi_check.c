/*
 * abi_check prints the layout of every struct of verifyd.h and the value of
 * every constant, one "name value" pair per line. abi_test.go compiles it
 * with gcc and compares each line with the Go codec.
 */
#include <stddef.h>
#include <stdio.h>

#include "../include/verifyd.h"

#define SIZE(s) printf("sizeof %s %zu\n", #s, sizeof(struct s))
#define OFF(s, f) printf("offsetof %s.%s %zu\n", #s, #f, offsetof(struct s, f))
#define FSIZE(s, f) printf("fieldsize %s.%s %zu\n", #s, #f, sizeof(((struct s *)0)->f))
#define FIELD(s, f) \
	do { \
		OFF(s, f); \
		FSIZE(s, f); \
	} while (0)
#define CONST(c) printf("const %s %lld\n", #c, (long long)(c))

int main(void)
{
	SIZE(verifyd_header);
	FIELD(verifyd_header, length);
	FIELD(verifyd_header, version);
	FIELD(verifyd_header, opcode);
	FIELD(verifyd_header, flags);
	FIELD(verifyd_header, request_id);

	SIZE(verifyd_hello);
	FIELD(verifyd_hello, min_version);
	FIELD(verifyd_hello, max_version);
	FIELD(verifyd_hello, reserved);

	SIZE(verifyd_hello_ok);
	FIELD(verifyd_hello_ok, version);
	FIELD(verifyd_hello_ok, reserved);
	FIELD(verifyd_hello_ok, max_frame_bytes);
	FIELD(verifyd_hello_ok, max_in_flight);
	FIELD(verifyd_hello_ok, max_token_bytes);
	FIELD(verifyd_hello_ok, max_scope_bytes);
	FIELD(verifyd_hello_ok, idle_timeout_ms);

	SIZE(verifyd_verify);
	FIELD(verifyd_verify, token_len);
	FIELD(verifyd_verify, scope_len);

	SIZE(verifyd_verify_result);
	FIELD(verifyd_verify_result, status);
	FIELD(verifyd_verify_result, reserved0);
	FIELD(verifyd_verify_result, role_count);
	FIELD(verifyd_verify_result, cache_ttl_ms);
	FIELD(verifyd_verify_result, expires_at_ms);
	FIELD(verifyd_verify_result, subject_len);
	FIELD(verifyd_verify_result, kind_len);
	FIELD(verifyd_verify_result, key_id_len);
	FIELD(verifyd_verify_result, grant_len);
	FIELD(verifyd_verify_result, source_len);
	FIELD(verifyd_verify_result, realm_len);
	FIELD(verifyd_verify_result, reserved1);

	SIZE(verifyd_error);
	FIELD(verifyd_error, code);
	FIELD(verifyd_error, message_len);
	FIELD(verifyd_error, reserved);

	CONST(VERIFYD_PROTOCOL_VERSION);

	CONST(VERIFYD_OP_HELLO);
	CONST(VERIFYD_OP_HELLO_OK);
	CONST(VERIFYD_OP_VERIFY);
	CONST(VERIFYD_OP_VERIFY_RESULT);
	CONST(VERIFYD_OP_PING);
	CONST(VERIFYD_OP_PONG);
	CONST(VERIFYD_OP_ERROR);

	CONST(VERIFYD_STATUS_OK);
	CONST(VERIFYD_STATUS_MALFORMED);
	CONST(VERIFYD_STATUS_UNKNOWN);
	CONST(VERIFYD_STATUS_EXPIRED);
	CONST(VERIFYD_STATUS_REVOKED);
	CONST(VERIFYD_STATUS_FORBIDDEN);
	CONST(VERIFYD_STATUS_UNAVAILABLE);
	CONST(VERIFYD_STATUS_INVALID_SCOPE);
	CONST(VERIFYD_STATUS_BAD_SIGNATURE);
	CONST(VERIFYD_STATUS_NOT_YET_VALID);
	CONST(VERIFYD_STATUS_UNTRUSTED_KEY);
	CONST(VERIFYD_STATUS_INVALID_CLAIMS);
	CONST(VERIFYD_STATUS_RATE_LIMITED);

	CONST(VERIFYD_ERR_BAD_FRAME);
	CONST(VERIFYD_ERR_FRAME_TOO_LARGE);
	CONST(VERIFYD_ERR_FRAME_TOO_SMALL);
	CONST(VERIFYD_ERR_UNSUPPORTED_VERSION);
	CONST(VERIFYD_ERR_UNKNOWN_OPCODE);
	CONST(VERIFYD_ERR_TOO_MANY_IN_FLIGHT);
	CONST(VERIFYD_ERR_TRUNCATED);
	CONST(VERIFYD_ERR_SHUTTING_DOWN);
	CONST(VERIFYD_ERR_TOKEN_TOO_LONG);
	CONST(VERIFYD_ERR_SCOPE_TOO_LONG);
	return 0;
}
