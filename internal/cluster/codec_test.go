package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/verifyd/verifyd/keystore"
)

var at = time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)

func auditEntries(n int) []keystore.AuditEntry {
	var out []keystore.AuditEntry
	for i := range n {
		out = append(out, keystore.AuditEntry{
			Time: at.Add(time.Duration(i) * time.Second), Seq: uint64(10 + i),
			Actor: "admin:1a2b3c4d", Action: "key.create", Target: fmt.Sprint("key-", i), Outcome: "ok",
			Detail: strings.Repeat("d", i*100),
		})
	}
	return out
}

func TestMarkerRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		m := marker{node: "node-a", time: at, audit: auditEntries(n)}
		b := m.appendEncode(nil)
		got, err := decodeMarker(b)
		if err != nil {
			t.Fatalf("%d entries: decodeMarker: %v", n, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%d entries: decoded %+v\nwant %+v", n, got, m)
		}
		if again := got.appendEncode([]byte("prefix")); !bytes.Equal(again[len("prefix"):], b) {
			t.Errorf("%d entries: encoding of the decoded marker differs", n)
		}
	}
	// The time is kept to the nanosecond, whatever its zone.
	local := marker{node: "n", time: at.In(time.FixedZone("x", 3600))}
	if got, err := decodeMarker(local.appendEncode(nil)); err != nil || !got.time.Equal(at) || got.time.Location() != time.UTC {
		t.Errorf("time = %v, %v; want %v in UTC", got.time, err, at)
	}
}

func TestDecodeMarkerRejects(t *testing.T) {
	valid := (&marker{node: "node-a", time: at, audit: auditEntries(3)}).appendEncode(nil)
	for i := range valid {
		if _, err := decodeMarker(valid[:i]); !errors.Is(err, errMarker) {
			t.Errorf("truncated to %d of %d bytes: %v, want errMarker", i, len(valid), err)
		}
	}
	bad := map[string][]byte{
		"empty":             {},
		"version 0":         append([]byte{0}, valid[1:]...),
		"version 2":         append([]byte{2}, valid[1:]...),
		"trailing byte":     append(append([]byte{}, valid...), 0),
		"node overflows":    {markerVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"node too long":     {markerVersion, 10, 'a'},
		"count beyond data": append((&marker{node: "n", time: at}).appendEncode(nil)[:1+2+8], 0xff, 0xff, 0xff, 0xff, 0x0f),
		"entry too long":    append((&marker{node: "n", time: at}).appendEncode(nil)[:1+2+8], 1, 200, 1),
		"entry not an entry": append((&marker{node: "n", time: at}).appendEncode(nil)[:1+2+8],
			1, 3, 'a', 'b', 'c'),
		// The only encoding of a length is the shortest.
		"non-minimal node length": append([]byte{markerVersion, 0x81, 0x00, 'n'}, valid[1+1+len("node-a"):]...),
	}
	for name, b := range bad {
		if _, err := decodeMarker(b); !errors.Is(err, errMarker) {
			t.Errorf("%s: decodeMarker = %v, want errMarker", name, err)
		}
	}
	// An invalid audit entry is reported with its cause.
	var de *keystore.DecodeError
	if _, err := decodeMarker(bad["entry not an entry"]); !errors.As(err, &de) {
		t.Errorf("invalid audit entry: %v, want a *keystore.DecodeError inside", err)
	}
}

// testRecord returns a valid record listing the digest of token, as
// stored (decoded from its encoding).
func testRecord(t *testing.T, id, token string) *keystore.Record {
	t.Helper()
	r := keystore.Record{
		ID: id, Kind: keystore.KindPAT, Subject: "alice@example.com", Name: "ci",
		Roles: []string{"consumer"}, Creator: "admin", CreatedAt: at, Digest: keystore.Sum(token), Version: 1,
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("test record: %v", err)
	}
	got, err := keystore.DecodeRecord(r.AppendEncode(nil))
	if err != nil {
		t.Fatal(err)
	}
	return &got
}

// next returns a copy of r changed by fn, with its version advanced.
func next(r *keystore.Record, fn func(*keystore.Record)) *keystore.Record {
	c := *r
	fn(&c)
	c.Version++
	return &c
}

func testRequest(id string) *keystore.AccessRequest {
	return &keystore.AccessRequest{
		ID: id, TokenDigest: keystore.Sum("request " + id), AgentID: "bot", Name: "Bot",
		ClientAddr: "192.0.2.1", Status: keystore.RequestPending,
		CreatedAt: at, ExpiresAt: at.Add(time.Hour), ForgetAt: at.Add(2 * time.Hour),
	}
}

func TestDecoded(t *testing.T) {
	rec := testRecord(t, "rec-1", "tok")
	req := testRequest("req-1")
	tokRev := keystore.TokenRevocation{TokenID: "jti/1", CreatedAt: at, Creator: "admin"}
	subRev := keystore.SubjectRevocation{Subject: "bob", NotBefore: at, CreatedAt: at, Creator: "admin"}
	mk := marker{node: "node-b", time: at, audit: auditEntries(1)}
	tests := []struct {
		key    string
		value  []byte
		put    bool
		want   keystore.ChangeSet
		marker *marker
		err    error
	}{
		{key: "r/rec-1", value: rec.AppendEncode(nil), put: true,
			want: keystore.ChangeSet{Records: []keystore.RecordChange{{New: rec}}}},
		{key: "r/rec-1", want: keystore.ChangeSet{Records: []keystore.RecordChange{{Old: &keystore.Record{ID: "rec-1"}}}}},
		{key: "q/req-1", value: req.AppendEncode(nil), put: true,
			want: keystore.ChangeSet{Requests: []keystore.RequestChange{{New: req}}}},
		{key: "q/req-1", want: keystore.ChangeSet{Requests: []keystore.RequestChange{{Old: &keystore.AccessRequest{ID: "req-1"}}}}},
		{key: "j/jti/1", value: tokRev.AppendEncode(nil), put: true,
			want: keystore.ChangeSet{Revocations: []keystore.RevocationChange{{Token: &tokRev}}}},
		{key: "j/jti/1"},
		{key: "n/bob", value: subRev.AppendEncode(nil), put: true,
			want: keystore.ChangeSet{Revocations: []keystore.RevocationChange{{Subject: &subRev}}}},
		{key: "n/bob"},
		{key: "m/policy", value: []byte("doc"), put: true,
			want: keystore.ChangeSet{Meta: []keystore.MetaChange{{Name: "policy", New: []byte("doc")}}}},
		{key: "m/policy"},
		{key: "t", value: mk.appendEncode(nil), put: true, marker: &mk},
		{key: "t"},
		{key: "d/" + digestName(rec.Digest), value: []byte("rec-1"), put: true},
		{key: "d/" + digestName(rec.Digest)},
		{key: "x/y", value: []byte("?"), put: true, err: errUnknownKey},
		{key: "x/y", err: errUnknownKey},
		{key: "tt", value: []byte("?"), put: true, err: errUnknownKey},
		{key: "", value: []byte("?"), put: true, err: errUnknownKey},
		// Values that do not decode stop the feed.
		{key: "r/rec-1", value: []byte("junk"), put: true, err: &keystore.DecodeError{}},
		{key: "q/req-1", value: []byte("junk"), put: true, err: &keystore.DecodeError{}},
		{key: "j/jti", value: []byte("junk"), put: true, err: &keystore.DecodeError{}},
		{key: "n/bob", value: []byte("junk"), put: true, err: &keystore.DecodeError{}},
		{key: "t", value: []byte("junk"), put: true, err: errMarker},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%q put=%v", tc.key, tc.put)
		var cs keystore.ChangeSet
		m, err := decoded(&cs, tc.key, tc.value, tc.put)
		switch de := (*keystore.DecodeError)(nil); {
		case tc.err == nil && err != nil:
			t.Errorf("%s: %v", name, err)
		case errors.As(tc.err, &de):
			if !errors.As(err, &de) {
				t.Errorf("%s: error %v, want a *keystore.DecodeError", name, err)
			}
			continue
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: error %v, want %v", name, err, tc.err)
			}
			continue
		}
		if !reflect.DeepEqual(cs, tc.want) {
			t.Errorf("%s: change set %+v\nwant %+v", name, cs, tc.want)
		}
		if !reflect.DeepEqual(m, tc.marker) {
			t.Errorf("%s: marker %+v, want %+v", name, m, tc.marker)
		}
	}
}

// describe renders a guard or operation of an etcd transaction.
func describeCmp(c clientv3.Cmp) string {
	p := (*pb.Compare)(&c)
	if p.Result != pb.Compare_EQUAL {
		return fmt.Sprintf("%s: comparison %v", p.Key, p.Result)
	}
	switch p.Target {
	case pb.Compare_CREATE:
		return fmt.Sprintf("%s created at %d", p.Key, p.GetCreateRevision())
	case pb.Compare_VALUE:
		return fmt.Sprintf("%s = %q", p.Key, p.GetValue())
	}
	return fmt.Sprintf("%s: target %v", p.Key, p.Target)
}

func describeOp(op clientv3.Op) string {
	switch {
	case op.IsPut():
		return fmt.Sprintf("put %s %q", op.KeyBytes(), op.ValueBytes())
	case op.IsDelete():
		return fmt.Sprintf("delete %s", op.KeyBytes())
	}
	return fmt.Sprintf("other %s", op.KeyBytes())
}

func absent(key string) string                              { return key + " created at 0" }
func holds(key string, v []byte) string                     { return fmt.Sprintf("%s = %q", key, v) }
func put(key string, v []byte) string                       { return fmt.Sprintf("put %s %q", key, v) }
func del(key string) string                                 { return "delete " + key }
func enc(r interface{ AppendEncode([]byte) []byte }) []byte { return r.AppendEncode(nil) }

// checkTxn builds the transaction of cs and compares its guards and
// operations with want.
func checkTxn(t *testing.T, what string, cs *keystore.ChangeSet, guards, ops []string) {
	t.Helper()
	b := newTxnBuilder("/p/data/")
	if err := b.add(cs); err != nil {
		t.Fatalf("%s: add: %v", what, err)
	}
	var gotGuards, gotOps []string
	for _, c := range b.guards {
		gotGuards = append(gotGuards, describeCmp(c))
	}
	for _, op := range b.ops {
		gotOps = append(gotOps, describeOp(op))
	}
	if !reflect.DeepEqual(gotGuards, guards) {
		t.Errorf("%s: guards\n%s\nwant\n%s", what, strings.Join(gotGuards, "\n"), strings.Join(guards, "\n"))
	}
	if !reflect.DeepEqual(gotOps, ops) {
		t.Errorf("%s: operations\n%s\nwant\n%s", what, strings.Join(gotOps, "\n"), strings.Join(ops, "\n"))
	}
}

func TestTxnBuilderRecords(t *testing.T) {
	const p = "/p/data/"
	r1 := testRecord(t, "k1", "a")
	r2 := next(r1, func(r *keystore.Record) { r.Name = "renamed" })
	rk := p + "r/k1"
	dk := func(tok string) string { return p + "d/" + digestName(keystore.Sum(tok)) }

	checkTxn(t, "created then updated", &keystore.ChangeSet{Records: []keystore.RecordChange{{New: r1}, {Old: r1, New: r2}}},
		[]string{absent(rk), absent(dk("a"))},
		[]string{put(rk, enc(r2)), put(dk("a"), []byte("k1"))})

	checkTxn(t, "updated", &keystore.ChangeSet{Records: []keystore.RecordChange{{Old: r1, New: r2}}},
		[]string{holds(rk, enc(r1))},
		[]string{put(rk, enc(r2))})

	// A rotation with grace keeps the old digest and guards the new one.
	r3 := next(r2, func(r *keystore.Record) {
		r.PrevDigest, r.PrevNotAfter, r.Digest = r.Digest, at.Add(time.Hour), keystore.Sum("b")
	})
	checkTxn(t, "rotated with grace", &keystore.ChangeSet{Records: []keystore.RecordChange{{Old: r2, New: r3}}},
		[]string{holds(rk, enc(r2)), absent(dk("b"))},
		[]string{put(rk, enc(r3)), put(dk("b"), []byte("k1"))})

	// Rotating again drops the digest that was previous.
	r4 := next(r3, func(r *keystore.Record) { r.PrevDigest, r.Digest = r.Digest, keystore.Sum("c") })
	checkTxn(t, "rotated again", &keystore.ChangeSet{Records: []keystore.RecordChange{{Old: r3, New: r4}}},
		[]string{holds(rk, enc(r3)), absent(dk("c"))},
		[]string{put(rk, enc(r4)), put(dk("c"), []byte("k1")), del(dk("a"))})

	// Without grace the current digest is dropped at once.
	r5 := next(r2, func(r *keystore.Record) { r.Digest = keystore.Sum("d") })
	checkTxn(t, "rotated without grace", &keystore.ChangeSet{Records: []keystore.RecordChange{{Old: r2, New: r5}}},
		[]string{holds(rk, enc(r2)), absent(dk("d"))},
		[]string{put(rk, enc(r5)), put(dk("d"), []byte("k1")), del(dk("a"))})

	// Two records keep their order.
	o := testRecord(t, "k0", "o")
	checkTxn(t, "two records", &keystore.ChangeSet{Records: []keystore.RecordChange{{Old: r1, New: r2}, {New: o}}},
		[]string{holds(rk, enc(r1)), absent(p + "r/k0"), absent(dk("o"))},
		[]string{put(rk, enc(r2)), put(p+"r/k0", enc(o)), put(dk("o"), []byte("k0"))})

	if err := newTxnBuilder(p).add(&keystore.ChangeSet{Records: []keystore.RecordChange{{Old: r1}}}); err == nil {
		t.Error("a record deletion was turned into a transaction")
	}
}

func TestTxnBuilderRequestsRevocationsMeta(t *testing.T) {
	const p = "/p/data/"
	q1 := testRequest("q1")
	q2 := *q1
	q2.Status, q2.DecidedAt, q2.DecidedBy = keystore.RequestApproved, at, "admin"
	checkTxn(t, "request created then decided", &keystore.ChangeSet{Requests: []keystore.RequestChange{{New: q1}, {Old: q1, New: &q2}}},
		[]string{absent(p + "q/q1")},
		[]string{put(p+"q/q1", enc(&q2))})
	checkTxn(t, "request decided", &keystore.ChangeSet{Requests: []keystore.RequestChange{{Old: q1, New: &q2}}},
		[]string{holds(p+"q/q1", enc(q1))},
		[]string{put(p+"q/q1", enc(&q2))})

	tok := keystore.TokenRevocation{TokenID: "jti-1", ExpiresAt: at, CreatedAt: at}
	tok2 := tok
	tok2.ExpiresAt = at.Add(time.Hour)
	sub := keystore.SubjectRevocation{Subject: "bob", NotBefore: at, CreatedAt: at}
	sub2 := sub
	sub2.NotBefore = at.Add(time.Hour)
	checkTxn(t, "new revocations", &keystore.ChangeSet{Revocations: []keystore.RevocationChange{{Token: &tok}, {Subject: &sub}}},
		[]string{absent(p + "j/jti-1"), absent(p + "n/bob")},
		[]string{put(p+"j/jti-1", enc(&tok)), put(p+"n/bob", enc(&sub))})
	checkTxn(t, "replaced revocations", &keystore.ChangeSet{Revocations: []keystore.RevocationChange{
		{Token: &tok2, OldToken: &tok}, {Subject: &sub2, OldSubject: &sub}}},
		[]string{holds(p+"j/jti-1", enc(&tok)), holds(p+"n/bob", enc(&sub))},
		[]string{put(p+"j/jti-1", enc(&tok2)), put(p+"n/bob", enc(&sub2))})
	checkTxn(t, "revocation staged twice", &keystore.ChangeSet{Revocations: []keystore.RevocationChange{
		{Token: &tok}, {Token: &tok2, OldToken: &tok}}},
		[]string{absent(p + "j/jti-1")},
		[]string{put(p+"j/jti-1", enc(&tok2))})
	// A jti and a subject of the same name are different keys.
	same := keystore.SubjectRevocation{Subject: "jti-1", NotBefore: at, CreatedAt: at}
	checkTxn(t, "jti and subject alike", &keystore.ChangeSet{Revocations: []keystore.RevocationChange{{Token: &tok}, {Subject: &same}}},
		[]string{absent(p + "j/jti-1"), absent(p + "n/jti-1")},
		[]string{put(p+"j/jti-1", enc(&tok)), put(p+"n/jti-1", enc(&same))})

	checkTxn(t, "new meta", &keystore.ChangeSet{Meta: []keystore.MetaChange{{Name: "admin_key", New: []byte("v1")}}},
		[]string{absent(p + "m/admin_key")},
		[]string{put(p+"m/admin_key", []byte("v1"))})
	checkTxn(t, "replaced meta", &keystore.ChangeSet{Meta: []keystore.MetaChange{{Name: "policy", Old: []byte("v1"), New: []byte("v2")}}},
		[]string{holds(p+"m/policy", []byte("v1"))},
		[]string{put(p+"m/policy", []byte("v2"))})

	// Audit entries travel in the marker, not as keys.
	checkTxn(t, "audit only", &keystore.ChangeSet{Audit: auditEntries(2)}, nil, nil)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfig(t *testing.T) {
	var off Config
	off.EnsureDefaults()
	if off.Enabled() || !reflect.DeepEqual(off, Config{}) || off.Validate() != nil {
		t.Errorf("a disabled config = %+v, Validate %v; want untouched and valid", off, off.Validate())
	}

	c := Config{SecretFile: "/etc/verifyd/secret", Etcd: Etcd{Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "/x"}}
	c.EnsureDefaults()
	host, _ := os.Hostname()
	if c.Node != host || c.Etcd.Prefix != "/x/" || c.Etcd.DialTimeout != DefaultDialTimeout ||
		c.Etcd.RequestTimeout != DefaultRequestTimeout || c.ReportInterval != DefaultReportInterval || c.MaxStaleness != 0 {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a config with defaults: %v", err)
	}

	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"missing secret file": {func(c *Config) { c.SecretFile = "" }, "secret_file"},
		"node with a slash":   {func(c *Config) { c.Node = "a/b" }, "node"},
		"node with a space":   {func(c *Config) { c.Node = "a b" }, "node"},
		"node too long":       {func(c *Config) { c.Node = strings.Repeat("n", 129) }, "node"},
		"cert without key":    {func(c *Config) { c.Etcd.TLS.CertFile = "cert.pem" }, "cert_file and key_file"},
		"key without cert":    {func(c *Config) { c.Etcd.TLS.KeyFile = "key.pem" }, "cert_file and key_file"},
		"blank endpoint":      {func(c *Config) { c.Etcd.Endpoints = append(c.Etcd.Endpoints, "") }, "endpoint"},
		"negative staleness":  {func(c *Config) { c.MaxStaleness = -time.Second }, "max_staleness"},
		"report too often":    {func(c *Config) { c.ReportInterval = time.Millisecond }, "report_interval"},
		"no request timeout":  {func(c *Config) { c.Etcd.RequestTimeout = -1 }, "request_timeout"},
	} {
		bad := c
		bad.Etcd.Endpoints = append([]string(nil), c.Etcd.Endpoints...)
		tc.change(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error about %s", name, err, tc.want)
		}
	}
	c.Node = strings.Repeat("n", 128)
	if err := c.Validate(); err != nil {
		t.Errorf("a node name of 128 bytes: %v", err)
	}
	// Every problem is reported at once.
	all := Config{Node: "a b", Etcd: Etcd{Endpoints: []string{"x"}, TLS: TLS{CertFile: "c"}}}
	if err := all.Validate(); err == nil || strings.Count(err.Error(), "\n") < 4 {
		t.Errorf("Validate of a config with many problems = %v", err)
	}
}

func TestTLSConfig(t *testing.T) {
	c := Config{}
	if cfg, err := c.tlsConfig(); cfg != nil || err != nil {
		t.Errorf("tlsConfig without TLS = %v, %v", cfg, err)
	}
	c.Etcd.TLS.CAFile = writeFile(t, "ca.pem", "not a certificate")
	if _, err := c.tlsConfig(); err == nil {
		t.Error("a CA file without a certificate was accepted")
	}
	c.Etcd.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := c.tlsConfig(); err == nil {
		t.Error("a missing CA file was accepted")
	}
}

func TestLoadSecrets(t *testing.T) {
	secret := strings.Repeat("0123456789abcdef", 3)
	load := func(content string) (Secrets, error) {
		c := Config{SecretFile: writeFile(t, "secret", content)}
		return c.LoadSecrets()
	}
	s1, err := load(secret)
	if err != nil {
		t.Fatalf("LoadSecrets: %v", err)
	}
	if len(s1.ChecksumKey) != 32 || len(s1.RequestTokenKey) != 32 {
		t.Errorf("key lengths %d, %d; want 32", len(s1.ChecksumKey), len(s1.RequestTokenKey))
	}
	if bytes.Equal(s1.ChecksumKey, s1.RequestTokenKey) {
		t.Error("the two labels derive the same key")
	}
	if bytes.Contains(s1.ChecksumKey, []byte(secret[:8])) || bytes.Contains(s1.RequestTokenKey, []byte(secret[:8])) {
		t.Error("a derived key holds the secret")
	}
	// The same file, here and on another node, gives the same keys;
	// surrounding white space does not count.
	for _, content := range []string{secret, secret + "\n", "  \t" + secret + "\r\n\n"} {
		s2, err := load(content)
		if err != nil || !reflect.DeepEqual(s2, s1) {
			t.Errorf("secret file %q: keys %x, %v; want those of the bare secret", content, s2, err)
		}
	}
	// A different secret gives different keys.
	if s3, err := load(secret[:47] + "X"); err != nil || bytes.Equal(s3.ChecksumKey, s1.ChecksumKey) || bytes.Equal(s3.RequestTokenKey, s1.RequestTokenKey) {
		t.Errorf("a different secret: %x, %v", s3, err)
	}
	// Too short, even padded with white space, and missing.
	if _, err := load(secret[:MinSecretLen-1]); err == nil {
		t.Error("a secret of 31 bytes was accepted")
	}
	if _, err := load("   " + secret[:MinSecretLen-1] + "\n\n\n"); err == nil {
		t.Error("a secret of 31 bytes padded with white space was accepted")
	}
	if _, err := load(secret[:MinSecretLen]); err != nil {
		t.Errorf("a secret of 32 bytes: %v", err)
	}
	c := Config{SecretFile: filepath.Join(t.TempDir(), "missing")}
	if _, err := c.LoadSecrets(); err == nil {
		t.Error("a missing secret file was accepted")
	}
}

// FuzzDecodeMarker checks that decodeMarker never panics and that what it
// accepts is the only encoding of what it returns.
func FuzzDecodeMarker(f *testing.F) {
	for _, n := range []int{0, 1, 3} {
		f.Add((&marker{node: "node-a", time: at, audit: auditEntries(n)}).appendEncode(nil))
	}
	f.Add((&marker{}).appendEncode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMarker(b)
		if err != nil {
			if !errors.Is(err, errMarker) {
				t.Fatalf("error %v does not wrap errMarker", err)
			}
			return
		}
		if again := m.appendEncode(nil); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v from %x, which encodes to %x", m, b, again)
		}
	})
}
