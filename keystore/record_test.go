package keystore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testRecord returns a valid record for token with every field set.
func testRecord(id, token string) Record {
	return Record{
		ID:           id,
		Kind:         KindPAT,
		Subject:      "alice@example.com",
		Name:         "ci key",
		Description:  "used by the nightly build\nsecond line",
		Roles:        []string{"publisher", "consumer"},
		ProjectRoles: map[string][]string{"p1": {"project_admin"}, "p0": {"consumer", "publisher"}},
		Scopes:       []string{"tool:data:*", "projects/p1/topics/orders:publish"},
		Creator:      "admin",
		Metadata:     map[string]string{"team": "infra", "ticket": "OPS-1"},
		CreatedAt:    time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		ExpiresAt:    time.Date(2026, 4, 2, 3, 4, 5, 0, time.UTC),
		Digest:       Sum(token),
		Version:      7,
	}
}

func TestSum(t *testing.T) {
	for _, tok := range []string{"", "vk_abc", strings.Repeat("x", 1000)} {
		if got, want := Sum(tok), Digest(sha256.Sum256([]byte(tok))); got != want {
			t.Errorf("Sum(%q) = %x, want %x", tok, got, want)
		}
	}
	d := Sum("secret")
	if s := d.String(); len(s) != 8 || s != "2bb80d53" {
		t.Errorf("String() = %q, want the first 8 hex digits 2bb80d53", s)
	}
	if v := d.LogValue(); v.String() != d.String() {
		t.Errorf("LogValue() = %q, want %q", v, d.String())
	}
}

func TestKind(t *testing.T) {
	tests := []struct {
		kind Kind
		name string
	}{
		{KindAPIKey, "api_key"},
		{KindAgent, "agent"},
		{KindPAT, "pat"},
		{KindImported, "imported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.kind.String(); got != tc.name {
				t.Errorf("String() = %q, want %q", got, tc.name)
			}
			k, err := ParseKind(tc.name)
			if err != nil || k != tc.kind {
				t.Errorf("ParseKind(%q) = %v, %v; want %v", tc.name, k, err, tc.kind)
			}
		})
	}
	for _, bad := range []string{"", "API_KEY", "jwt", "Kind(1)"} {
		if _, err := ParseKind(bad); err == nil {
			t.Errorf("ParseKind(%q) succeeded", bad)
		}
	}
	if got := Kind(0).String(); got != "Kind(0)" {
		t.Errorf("Kind(0).String() = %q", got)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	full := testRecord("AAAAAAAAAAAAAAAAAAAAAA", "tok")
	full.RevokedAt = time.Date(2026, 2, 1, 0, 0, 0, 999999999, time.UTC)
	full.PrevDigest = Sum("old")
	full.PrevNotAfter = time.Date(2026, 2, 1, 0, 0, 1, 0, time.UTC)
	full.Version = 1<<64 - 1
	tests := []struct {
		name string
		rec  Record
	}{
		{"full", full},
		{"minimal", Record{ID: "a", Kind: KindAgent, Subject: "s", Digest: Sum("t")}},
		{"extreme times", Record{ID: "b", Kind: KindImported, Subject: "s", Digest: Sum("t"),
			CreatedAt: time.Unix(minUnix, 1).UTC(), ExpiresAt: time.Unix(maxUnix, 999999999).UTC()}},
		{"project without roles", Record{ID: "c", Kind: KindAPIKey, Subject: "ü", Digest: Sum("t"),
			ProjectRoles: map[string][]string{"p": nil}}},
		{"long strings", Record{ID: "d", Kind: KindAPIKey, Subject: "s", Digest: Sum("t"),
			Description: strings.Repeat("é", 2000), Metadata: map[string]string{"k": strings.Repeat("v", 300)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			enc := tc.rec.AppendEncode(nil)
			if enc[0] != 1 {
				t.Fatalf("format version byte = %d, want 1", enc[0])
			}
			got, err := DecodeRecord(enc)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if want := tc.rec.normalize(); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			if again := got.AppendEncode(nil); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, enc)
			}
			// Appending to a non-empty buffer keeps its contents.
			if pre := tc.rec.AppendEncode([]byte("xy")); !bytes.Equal(pre[2:], enc) || string(pre[:2]) != "xy" {
				t.Fatal("AppendEncode does not append")
			}
		})
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	valid := testRecord("AAAAAAAAAAAAAAAAAAAAAA", "tok")
	enc := valid.AppendEncode(nil)
	// Offsets into enc: version, kind, then the ID's length byte.
	idLen := 2
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(enc)) }
	// timeAt builds a minimal record whose created_at is the given raw
	// 13-byte time.
	withTime := func(tag byte, sec int64, nsec uint32) []byte {
		r := Record{ID: "a", Kind: KindAgent, Subject: "s", Digest: Sum("t")}
		b := r.AppendEncode(nil)
		// created_at is right after the 5 strings and 4 empty counts.
		off := 2 + 2 + 2 + 1 + 1 + 1 + 4
		var raw []byte
		raw = append(raw, tag)
		raw = binary.LittleEndian.AppendUint64(raw, uint64(sec))
		raw = binary.LittleEndian.AppendUint32(raw, nsec)
		return append(append(append([]byte{}, b[:off]...), raw...), b[off+1:]...)
	}
	if _, err := DecodeRecord(withTime(1, 1700000000, 5)); err != nil {
		t.Fatalf("withTime helper builds an invalid record: %v", err)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version only", []byte{1}},
		{"version 0", mutate(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", mutate(func(b []byte) []byte { b[0] = 2; return b })},
		{"kind 0", mutate(func(b []byte) []byte { b[1] = 0; return b })},
		{"kind 5", mutate(func(b []byte) []byte { b[1] = 5; return b })},
		{"trailing byte", append(bytes.Clone(enc), 0)},
		{"truncated version", enc[:len(enc)-1]},
		{"non-minimal uvarint", mutate(func(b []byte) []byte {
			return append(append(append([]byte{}, b[:idLen]...), b[idLen]|0x80, 0), b[idLen+1:]...)
		})},
		{"invalid UTF-8", mutate(func(b []byte) []byte { b[idLen+1] = 0xff; return b })},
		{"string longer than input", mutate(func(b []byte) []byte { b[idLen] = 0x7f; return b })},
		{"absurd string length", append([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, make([]byte, 8)...)},
		{"uvarint overflow", append([]byte{1, 1}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"absurd list count", append([]byte{1, 1, 1, 'a', 1, 's', 0, 0, 0, 0xff, 0xff, 0x03}, make([]byte, 100)...)},
		{"unsorted projects", bytes.Replace(enc, []byte("\x02p0"), []byte("\x02p2"), 1)},
		{"duplicate metadata keys", bytes.Replace(enc, []byte("\x06ticket"), []byte("\x04team"), 1)},
		{"time tag 2", withTime(2, 0, 0)},
		{"nanoseconds 1e9", withTime(1, 0, 1e9)},
		{"before year 1", withTime(1, minUnix-1, 0)},
		{"after year 9999", withTime(1, maxUnix+1, 0)},
		{"zero time spelled as set", withTime(1, minUnix, 0)},
		{"too long", append(bytes.Clone(enc), make([]byte, MaxEncodedLen)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := DecodeRecord(tc.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeRecord = %+v, %v; want a *DecodeError", r, err)
			}
			if !reflect.DeepEqual(r, Record{}) {
				t.Errorf("failed decode returned a partial record %+v", r)
			}
			if !strings.HasPrefix(err.Error(), "keystore: decode record: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(enc) {
			if _, err := DecodeRecord(enc[:n]); err == nil {
				t.Fatalf("DecodeRecord accepted the first %d of %d bytes", n, len(enc))
			}
		}
	})
}

func TestValidate(t *testing.T) {
	ok := testRecord("AAAAAAAAAAAAAAAAAAAAAA", "tok")
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Record)
		want   []string // substrings, one per expected problem
	}{
		{"empty id", func(r *Record) { r.ID = "" }, []string{"id must be"}},
		{"id alphabet", func(r *Record) { r.ID = "a/b" }, []string{"id must be"}},
		{"id too long", func(r *Record) { r.ID = strings.Repeat("a", MaxIDLen+1) }, []string{"id must be"}},
		{"kind", func(r *Record) { r.Kind = 9 }, []string{"unknown kind 9"}},
		{"empty subject", func(r *Record) { r.Subject = "" }, []string{"subject is empty"}},
		{"subject with NUL", func(r *Record) { r.Subject = "a\x00b" }, []string{"subject must be"}},
		{"subject invalid UTF-8", func(r *Record) { r.Subject = "\xff" }, []string{"subject must be"}},
		{"description too long", func(r *Record) { r.Description = strings.Repeat("x", MaxDescriptionLen+1) }, []string{"description"}},
		{"empty role", func(r *Record) { r.Roles = []string{""} }, []string{"roles: role"}},
		{"project role", func(r *Record) { r.ProjectRoles = map[string][]string{"p": {"a\nb"}} }, []string{`project roles of "p"`}},
		{"bad scope", func(r *Record) { r.Scopes = []string{"a::b"} }, []string{"scope: rbac: invalid scope pattern"}},
		{"metadata", func(r *Record) { r.Metadata = map[string]string{"": "v"} }, []string{"metadata key"}},
		{"zero digest", func(r *Record) { r.Digest = Digest{} }, []string{"digest is zero"}},
		{"prev without grace", func(r *Record) { r.PrevDigest = Sum("old") }, []string{"without prev_not_after"}},
		{"grace without prev", func(r *Record) { r.PrevNotAfter = time.Now() }, []string{"without a previous digest"}},
		{"prev equals current", func(r *Record) { r.PrevDigest = r.Digest; r.PrevNotAfter = time.Now() }, []string{"equals the current"}},
		{"time out of range", func(r *Record) { r.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"expires_at is outside"}},
		{"several problems", func(r *Record) { r.ID = ""; r.Subject = ""; r.Digest = Digest{} },
			[]string{"id must be", "subject is empty", "digest is zero"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := ok.clone()
			tc.mutate(&r)
			err := r.Validate()
			var re *RecordError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Validate = %v, want a *RecordError matching ErrInvalidRecord", err)
			}
			if len(re.Problems) != len(tc.want) {
				t.Fatalf("problems = %q, want %d", re.Problems, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(re.Problems[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, re.Problems[i], w)
				}
			}
		})
	}
}
