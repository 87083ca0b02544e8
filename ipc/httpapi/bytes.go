package httpapi

import "unsafe"

// b2s returns a string sharing b's bytes, without copying. The string is
// valid only while b is unchanged (fasthttp reuses request buffers once the
// handler returns), so it is handed only to callees that keep no
// reference to it once they return, as verify.Verifier.Verify.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
