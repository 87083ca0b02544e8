package rabbitmq

import (
	"container/list"
	"sync"
	"time"
)

// bindings remembers, for each successful login, the credential it
// presented, so that the later checks of the connection (which carry no
// password) can be decided for that credential. It is keyed by the
// binding tag of the login (see Adapter), holds at most max entries
// (the least recently used one goes first) and forgets an entry at its
// expiry. It is safe for concurrent use.
//
// The tokens are kept in memory only, never logged and never written
// anywhere.
type bindings struct {
	mu    sync.Mutex               // guards the fields below
	max   int                      // capacity
	byTag map[string]*list.Element // of *binding
	lru   list.List                // of *binding, most recently used first
}

// binding is one login's credential.
type binding struct {
	tag      string
	username string
	token    string
	expires  time.Time
}

func newBindings(max int) *bindings {
	b := &bindings{max: max, byTag: make(map[string]*list.Element)}
	b.lru.Init()
	return b
}

// put remembers the credential of a login until expires, replacing the
// entry of the same tag.
func (b *bindings) put(tag, username, token string, expires time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.byTag[tag]; ok {
		e.Value.(*binding).expires = expires
		b.lru.MoveToFront(e)
		return
	}
	for b.lru.Len() >= b.max {
		b.removeLocked(b.lru.Back())
	}
	b.byTag[tag] = b.lru.PushFront(&binding{tag: tag, username: username, token: token, expires: expires})
}

// get returns the entry of tag, unless there is none or it has expired
// at now.
func (b *bindings) get(tag string, now time.Time) (username, token string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.byTag[tag]
	if !ok {
		return "", "", false
	}
	bd := e.Value.(*binding)
	if !now.Before(bd.expires) {
		b.removeLocked(e)
		return "", "", false
	}
	b.lru.MoveToFront(e)
	return bd.username, bd.token, true
}

// drop forgets the entry of tag.
func (b *bindings) drop(tag string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.byTag[tag]; ok {
		b.removeLocked(e)
	}
}

// len returns the number of entries, expired ones not yet dropped
// included.
func (b *bindings) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}

// removeLocked removes e; b.mu must be held.
func (b *bindings) removeLocked(e *list.Element) {
	delete(b.byTag, e.Value.(*binding).tag)
	b.lru.Remove(e)
}
