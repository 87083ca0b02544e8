package rbac

// ACLsAdmit reports whether every ACL of p whose scope covers reports true
// for admits pr as [Binding.Decide] would admit it on that scope: the ACL
// lists pr's subject, or a pattern of one of pr's acl_exempt roles matches
// the ACL's scope. Under mode none, and for a policy without ACLs, it is
// true; a nil pr is on no ACL.
//
// It serves requests that stand for many scopes at once, such as an MQTT
// topic filter. Decide reads a '*' in a requested scope as an ordinary
// character: a pattern grants such a scope only when it covers every scope
// the '*' could stand for, but the only ACL Decide consults is the one on
// the scope as written, and ACLs name literal scopes. A caller that lets a
// requested scope stand for many therefore asks ACLsAdmit as well, once
// Decide has allowed, with covers reporting whether its request stands for
// an ACL's scope ("<resource>:<action>"). Both allowing, Decide allows
// every scope the request stands for.
//
// It calls covers once per ACL of the policy, and binds pr when an ACL
// covered does not list its subject: it answers occasional questions (a
// subscription), not the per-message path.
func (p *Policy) ACLsAdmit(pr *Principal, covers func(scope string) bool) bool {
	if p.doc.mode == None || p.acls == nil {
		return true
	}
	var exempt *Matcher
	bound := false
	for scope, e := range p.acls {
		if !covers(scope) || pr != nil && e.admits(pr.Subject, false) {
			continue
		}
		if pr == nil {
			return false
		}
		if !bound {
			if s := p.Bind(pr).set; s != nil {
				exempt = s.exempt
			}
			bound = true
		}
		if _, ok := exempt.Match(scope); !ok {
			return false
		}
	}
	return true
}
