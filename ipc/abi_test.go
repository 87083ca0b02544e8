package ipc

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// goLayout states, from the Go codec's own constants, every line
// testdata/abi_check.c prints from verifyd.h.
func goLayout() map[string]int64 {
	m := map[string]int64{}
	type field struct {
		name      string
		off, size int
	}
	add := func(s string, size int, fields ...field) {
		m["sizeof "+s] = int64(size)
		for _, f := range fields {
			m["offsetof "+s+"."+f.name] = int64(f.off)
			m["fieldsize "+s+"."+f.name] = int64(f.size)
		}
	}
	add("verifyd_header", HeaderSize,
		field{"length", offHeaderLength, 4}, field{"version", offHeaderVersion, 1},
		field{"opcode", offHeaderOpcode, 1}, field{"flags", offHeaderFlags, 2},
		field{"request_id", offHeaderRequestID, 8})
	add("verifyd_hello", HelloSize,
		field{"min_version", offHelloMinVersion, 2}, field{"max_version", offHelloMaxVersion, 2},
		field{"reserved", offHelloReserved, 4})
	add("verifyd_hello_ok", HelloOKSize,
		field{"version", offHelloOKVersion, 2}, field{"reserved", offHelloOKReserved, 2},
		field{"max_frame_bytes", offHelloOKMaxFrameBytes, 4}, field{"max_in_flight", offHelloOKMaxInFlight, 4},
		field{"max_token_bytes", offHelloOKMaxTokenBytes, 4}, field{"max_scope_bytes", offHelloOKMaxScopeBytes, 4},
		field{"idle_timeout_ms", offHelloOKIdleTimeoutMS, 4})
	add("verifyd_verify", VerifySize,
		field{"token_len", offVerifyTokenLen, 4}, field{"scope_len", offVerifyScopeLen, 4})
	add("verifyd_verify_result", VerifyResultSize,
		field{"status", offResultStatus, 1}, field{"reserved0", offResultReserved0, 1},
		field{"role_count", offResultRoleCount, 2}, field{"cache_ttl_ms", offResultCacheTTLMS, 4},
		field{"expires_at_ms", offResultExpiresAtMS, 8}, field{"subject_len", offResultSubjectLen, 2},
		field{"kind_len", offResultKindLen, 2}, field{"key_id_len", offResultKeyIDLen, 2},
		field{"grant_len", offResultGrantLen, 2}, field{"source_len", offResultSourceLen, 2},
		field{"realm_len", offResultRealmLen, 2}, field{"reserved1", offResultReserved1, 4})
	add("verifyd_error", ErrorSize,
		field{"code", offErrorCode, 2}, field{"message_len", offErrorMessageLen, 2},
		field{"reserved", offErrorReserved, 4})

	m["const VERIFYD_PROTOCOL_VERSION"] = ProtocolVersion
	for op := OpHello; op <= OpError; op++ {
		m["const VERIFYD_OP_"+strings.ToUpper(op.String())] = int64(op)
	}
	for s := StatusOK; s <= StatusRateLimited; s++ {
		m["const VERIFYD_STATUS_"+strings.ToUpper(s.String())] = int64(s)
	}
	for c := CodeBadFrame; c <= CodeScopeTooLong; c++ {
		m["const VERIFYD_ERR_"+strings.ToUpper(c.String())] = int64(c)
	}
	return m
}

// TestCLayout compiles testdata/abi_check.c against include/verifyd.h with
// gcc, runs it, and compares every size, offset and constant it prints with
// the Go codec's, in both directions.
func TestCLayout(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		msg := "gcc not found: the C header layout (include/verifyd.h) is NOT checked against the Go codec"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	bin := filepath.Join(t.TempDir(), "abi_check")
	out, err := exec.Command(gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
		"-o", bin, filepath.Join("testdata", "abi_check.c")).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err = exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("abi_check: %v", err)
	}
	want := goLayout()
	got := map[string]int64{}
	for line := range strings.Lines(string(out)) {
		var kind, name string
		var v int64
		if _, err := fmt.Sscan(line, &kind, &name, &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got[kind+" "+name] = v
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: the C program does not print it", k)
		case g != want[k]:
			t.Errorf("%s: C says %d, Go says %d", k, g, want[k])
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %d: the Go codec does not state it", k, g)
		}
	}
	// Each struct's fields tile it with no gap and no overlap.
	for k, size := range want {
		s, ok := strings.CutPrefix(k, "sizeof ")
		if !ok {
			continue
		}
		covered := make([]int, size)
		for k2, off := range want {
			f, ok := strings.CutPrefix(k2, "offsetof "+s+".")
			if !ok {
				continue
			}
			for i := range want["fieldsize "+s+"."+f] {
				covered[off+i]++
			}
		}
		for i, c := range covered {
			if c != 1 {
				t.Errorf("%s: byte %d is covered by %d fields", s, i, c)
			}
		}
	}
	if t.Failed() {
		t.Logf("C program output:\n%s", out)
	}
}
