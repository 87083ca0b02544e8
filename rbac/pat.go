package rbac

import (
	"fmt"
	"strings"
)

// PAT scopes in SuperMQ's form are tuples (domain, entity type, operation,
// entity id or "*"). PATScope maps one onto a pattern of verifyd's grammar:
//
//	domains/<domain>/<type>/<id>:<operation>   an operation on one entity, or on every entity with id "*"
//	domains/<domain>/<type>:<operation>        create and list, which act on the collection
//	domains/<domain>:<operation>               an operation on the domain itself (type "domains")
//
// so that the last segment is the operation, as for every verifyd scope, and
// the rest names the resource. The entity types and their operations:
//
//	clients, groups, dashboards   create list read update delete share unshare
//	channels                      create list read update delete share unshare publish subscribe
//	messages                      publish subscribe (on a channel: domains/<d>/channels/<id>:publish)
//	domains                       read update delete share unshare (id "*" or the domain itself)
//
// "view" is accepted for "read". Create and list take the id "*" only.
// Domain and entity ids follow the rules of template values: letters,
// digits and - . _ ~ ! $ & ' ( ) + , ; = @ %, without '/', ':' or '*'.
func PATScope(domain, entityType, operation, entityID string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("rbac: PAT scope (%q, %q, %q, %q): %s", truncate(domain, 64), truncate(entityType, 32), truncate(operation, 32), truncate(entityID, 64), fmt.Sprintf(format, args...))
	}
	if !validTemplateValue(domain) {
		return fail("invalid domain id")
	}
	if operation == "view" {
		operation = "read"
	}
	ops, ok := patOperations[entityType]
	if !ok {
		return fail("unknown entity type (clients, channels, groups, dashboards, messages, domains)")
	}
	if !strings.Contains(" "+ops+" ", " "+operation+" ") {
		return fail("operation not valid for %s (%s)", entityType, ops)
	}
	if entityID != "*" && !validTemplateValue(entityID) {
		return fail("invalid entity id")
	}
	base := "domains/" + domain
	var p string
	switch {
	case entityType == "domains":
		if entityID != "*" && entityID != domain {
			return fail("a domain operation applies to the domain itself: entity id must be \"*\" or the domain")
		}
		p = base + ":" + operation
	case operation == "create" || operation == "list":
		if entityID != "*" {
			return fail("%s acts on the collection: entity id must be \"*\"", operation)
		}
		p = base + "/" + entityType + ":" + operation
	case entityType == "messages":
		p = base + "/channels/" + entityID + ":" + operation
	default:
		p = base + "/" + entityType + "/" + entityID + ":" + operation
	}
	if len(p) > MaxLen {
		return fail("the pattern is longer than %d bytes", MaxLen)
	}
	return p, nil
}

// patOperations lists the operations of each PAT entity type.
var patOperations = map[string]string{
	"clients":    "create list read update delete share unshare",
	"groups":     "create list read update delete share unshare",
	"dashboards": "create list read update delete share unshare",
	"channels":   "create list read update delete share unshare publish subscribe",
	"messages":   "publish subscribe",
	"domains":    "read update delete share unshare",
}
