package cluster

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/verifyd/verifyd/keystore"
)

// The etcd layout, under the configured prefix P:
//
//	P data/r/<id>        record (keystore.Record.AppendEncode)
//	P data/d/<digest>    id of the record a digest indexes (hex digest);
//	                     a guard against two records sharing a digest,
//	                     never read by followers
//	P data/j/<jti>       JWT revocation by jti
//	P data/n/<subject>   JWT revocation by subject
//	P data/q/<id>        access request
//	P data/m/<name>      shared meta value (the admin-key digest, the policy)
//	P data/t             the commit marker: rewritten by every change, it
//	                     carries the writing node, the commit time and the
//	                     change's audit entries
//	P nodes/<node>       a node's published status (JSON, with a lease)
//
// Followers watch P data/ only. Nothing under P is a secret: records hold
// digests of tokens, never tokens.
const (
	dataDir     = "data/"
	nodesDir    = "nodes/"
	kindRecord  = "r/"
	kindDigest  = "d/"
	kindToken   = "j/"
	kindSubject = "n/"
	kindRequest = "q/"
	kindMeta    = "m/"
	markerKey   = "t"
)

// markerVersion is the first byte of a commit marker.
const markerVersion = 1

// A marker is what the commit marker of one change says.
type marker struct {
	node  string
	time  time.Time
	audit []keystore.AuditEntry
}

func (m *marker) appendEncode(dst []byte) []byte {
	dst = append(dst, markerVersion)
	dst = binary.AppendUvarint(dst, uint64(len(m.node)))
	dst = append(dst, m.node...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.time.UnixNano()))
	dst = binary.AppendUvarint(dst, uint64(len(m.audit)))
	for i := range m.audit {
		e := m.audit[i].AppendEncode(nil)
		dst = binary.AppendUvarint(dst, uint64(len(e)))
		dst = append(dst, e...)
	}
	return dst
}

var errMarker = errors.New("cluster: malformed commit marker")

func decodeMarker(b []byte) (marker, error) {
	var m marker
	if len(b) < 1 || b[0] != markerVersion {
		return m, errMarker
	}
	b = b[1:]
	// uvarint reads a uvarint in its shortest encoding, the only one
	// appendEncode writes.
	uvarint := func() (uint64, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || k > 1 && b[k-1] == 0 {
			return 0, false
		}
		b = b[k:]
		return n, true
	}
	str := func() ([]byte, bool) {
		n, ok := uvarint()
		if !ok || uint64(len(b)) < n {
			return nil, false
		}
		s := b[:n]
		b = b[n:]
		return s, true
	}
	node, ok := str()
	if !ok || len(b) < 8 {
		return m, errMarker
	}
	m.node = string(node)
	m.time = time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
	b = b[8:]
	n, ok := uvarint()
	if !ok || n > uint64(len(b)) {
		return m, errMarker
	}
	for range n {
		e, ok := str()
		if !ok {
			return m, errMarker
		}
		entry, err := keystore.DecodeAuditEntry(e)
		if err != nil {
			return m, fmt.Errorf("%w: %w", errMarker, err)
		}
		m.audit = append(m.audit, entry)
	}
	if len(b) != 0 {
		return m, errMarker
	}
	return m, nil
}

func digestName(d keystore.Digest) string { return hex.EncodeToString(d[:]) }

// decoded adds the value of one data key (relative to P data/) to cs: a
// put when value is not nil, a deletion otherwise. It returns the marker
// when the key is the commit marker. Deletions of revocations, meta
// values and guards change nothing: a replica forgets revocations on its
// own, after their retention.
func decoded(cs *keystore.ChangeSet, key string, value []byte, put bool) (*marker, error) {
	kind, name := key, ""
	if len(key) >= 2 && key[1] == '/' {
		kind, name = key[:2], key[2:]
	}
	switch kind {
	case markerKey:
		if !put {
			return nil, nil
		}
		m, err := decodeMarker(value)
		return &m, err
	case kindRecord:
		if !put {
			cs.Records = append(cs.Records, keystore.RecordChange{Old: &keystore.Record{ID: name}})
			return nil, nil
		}
		r, err := keystore.DecodeRecord(value)
		if err != nil {
			return nil, fmt.Errorf("cluster: record %s: %w", name, err)
		}
		cs.Records = append(cs.Records, keystore.RecordChange{New: &r})
	case kindRequest:
		if !put {
			cs.Requests = append(cs.Requests, keystore.RequestChange{Old: &keystore.AccessRequest{ID: name}})
			return nil, nil
		}
		r, err := keystore.DecodeAccessRequest(value)
		if err != nil {
			return nil, fmt.Errorf("cluster: access request %s: %w", name, err)
		}
		cs.Requests = append(cs.Requests, keystore.RequestChange{New: &r})
	case kindToken:
		if put {
			r, err := keystore.DecodeTokenRevocation(value)
			if err != nil {
				return nil, fmt.Errorf("cluster: revocation of jti %s: %w", name, err)
			}
			cs.Revocations = append(cs.Revocations, keystore.RevocationChange{Token: &r})
		}
	case kindSubject:
		if put {
			r, err := keystore.DecodeSubjectRevocation(value)
			if err != nil {
				return nil, fmt.Errorf("cluster: revocation of subject %s: %w", name, err)
			}
			cs.Revocations = append(cs.Revocations, keystore.RevocationChange{Subject: &r})
		}
	case kindMeta:
		if put {
			cs.Meta = append(cs.Meta, keystore.MetaChange{Name: name, New: value})
		}
	case kindDigest:
	default:
		return nil, errUnknownKey
	}
	return nil, nil
}

// errUnknownKey reports a data key of no known kind; the follower logs it
// and goes on.
var errUnknownKey = errors.New("cluster: unknown key under the data prefix")
