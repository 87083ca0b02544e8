package mqtt

import (
	"container/list"
	"sync"
)

// bindings remembers, per MQTT client (username and client id), the token
// its last successful authentication presented, so that the ACL checks,
// which carry no password, can verify that token again. It holds at most
// max bindings and forgets the least recently used one first. It is safe
// for concurrent use.
//
// A binding is never removed but to make room: a revoked or expired token
// stays bound, and fails its next verification. So while nothing has been
// evicted, every client that authenticated since the start is bound, and
// a username with one binding has had one client: only then does [only]
// answer for the username.
//
// The tokens are secrets: they are held in memory only and never logged.
type bindings struct {
	max int

	mu      sync.Mutex
	byUser  map[string]map[string]*list.Element // username -> client id -> element of lru; mu held
	lru     list.List                           // of *binding, most recently used first; mu held
	evicted bool                                // a binding was ever evicted; mu held
}

// binding is one client's token.
type binding struct {
	username, clientID, token string
}

func newBindings(max int) *bindings {
	return &bindings{max: max, byUser: map[string]map[string]*list.Element{}}
}

// put binds the client to token, replacing an earlier binding: a client
// that authenticates again takes over its session. It reports whether a
// binding was evicted to make room for the first time.
func (b *bindings) put(username, clientID, token string) (firstEviction bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	clients := b.byUser[username]
	if e := clients[clientID]; e != nil {
		e.Value.(*binding).token = token
		b.lru.MoveToFront(e)
		return false
	}
	if clients == nil {
		clients = map[string]*list.Element{}
		b.byUser[username] = clients
	}
	clients[clientID] = b.lru.PushFront(&binding{username: username, clientID: clientID, token: token})
	for b.lru.Len() > b.max {
		b.remove(b.lru.Back())
		firstEviction = firstEviction || !b.evicted
		b.evicted = true
	}
	return firstEviction
}

// get returns the client's token.
func (b *bindings) get(username, clientID string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.byUser[username][clientID]
	if e == nil {
		return "", false
	}
	b.lru.MoveToFront(e)
	return e.Value.(*binding).token, true
}

// only returns the token of the username's one client. It returns false
// when the username has no client or more than one, and once a binding has
// been evicted, since an evicted client may share the username.
func (b *bindings) only(username string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	clients := b.byUser[username]
	if b.evicted || len(clients) != 1 {
		return "", false
	}
	for _, e := range clients {
		b.lru.MoveToFront(e)
		return e.Value.(*binding).token, true
	}
	return "", false
}

// len returns the number of bindings.
func (b *bindings) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}

// remove forgets e; b.mu must be held.
func (b *bindings) remove(e *list.Element) {
	bd := b.lru.Remove(e).(*binding)
	clients := b.byUser[bd.username]
	delete(clients, bd.clientID)
	if len(clients) == 0 {
		delete(b.byUser, bd.username)
	}
}
