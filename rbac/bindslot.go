package rbac

import "sync/atomic"

// BindingSlot keeps a principal bound against the policy of its last use,
// for a cache entry that holds the principal. The zero value is empty and
// ready.
type BindingSlot struct {
	b atomic.Pointer[Binding]
}

// Get returns pr bound against p: the binding in the slot when it was made
// against p, or else a new one, which replaces it. A binding made against
// another policy is never returned, so after a policy swap every cached
// entry is bound again at its next use and no decision of the old policy
// survives. It allocates only when it binds.
//
// Get is safe for concurrent use. Two uses racing across a swap may each
// store the binding of the policy they loaded; the comparison with p makes
// either one correct for its caller, and the next use settles on the
// policy in force.
func (s *BindingSlot) Get(p *Policy, pr *Principal) *Binding {
	if b := s.b.Load(); b != nil && b.Policy() == p {
		return b
	}
	b := p.Bind(pr)
	s.b.Store(b)
	return b
}
