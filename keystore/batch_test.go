package keystore

import (
	"errors"
	"testing"
)

func TestCreateBatch(t *testing.T) {
	s := openMem(t, nil)
	mustCreate(t, s, testRecord(id(0), "existing"))
	// A negative cache entry for a digest the batch adds must not survive it.
	if e := mustLookup(t, s, Sum("token-2")); e != nil {
		t.Fatal("token-2 known before the batch")
	}
	s.WaitCache()

	batch := []Record{testRecord(id(1), "token-1"), testRecord(id(2), "token-2"), testRecord(id(3), "token-3")}
	got, err := s.CreateBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Version != 1 || got[0].CreatedAt.IsZero() {
		t.Fatalf("CreateBatch returned %+v", got)
	}
	for i, tok := range []string{"token-1", "token-2", "token-3"} {
		e := mustLookup(t, s, Sum(tok))
		if e == nil || e.Principal().KeyID != batch[i].ID {
			t.Fatalf("Lookup(%s) = %+v", tok, e)
		}
	}

	failures := []struct {
		name  string
		batch []Record
		want  error
	}{
		{"id taken", []Record{testRecord(id(10), "t10"), testRecord(id(0), "t11")}, ErrExists},
		{"digest in use", []Record{testRecord(id(10), "t10"), testRecord(id(11), "existing")}, ErrDigestInUse},
		{"id twice", []Record{testRecord(id(10), "t10"), testRecord(id(10), "t11")}, ErrExists},
		{"digest twice", []Record{testRecord(id(10), "t10"), testRecord(id(11), "t10")}, ErrDigestInUse},
		{"invalid", []Record{testRecord(id(10), "t10"), {ID: id(11)}}, ErrInvalidRecord},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateBatch(ctx, tc.batch); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, err := s.Get(id(10)); !errors.Is(err, ErrNotFound) {
				t.Fatal("a failed batch stored part of its records")
			}
		})
	}
}

func TestCompactKeepsData(t *testing.T) {
	s := openMem(t, nil)
	mustCreate(t, s, testRecord(id(1), "token-1"))
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if e := mustLookup(t, s, Sum("token-1")); e == nil {
		t.Fatal("record lost by Compact")
	}
	s.Close()
	if err := s.Compact(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compact after Close: %v", err)
	}
}
