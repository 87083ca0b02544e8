package main

import (
	"context"
	"flag"
)

// A command is one verifyctl command ("keys create", "verify", ...).
type command struct {
	name     string // as typed: "keys create"
	synopsis string // usage line after "verifyctl "
	summary  string // one line for the command list
	help     string // flags and details for "verifyctl help <name>"
	minArgs  int    // positional arguments accepted
	maxArgs  int
	// bind registers the command's own flags on fs and returns the function
	// that runs the command once fs has been parsed.
	bind func(fs *flag.FlagSet) func(ctx context.Context, s *session, args []string) error
}

// commands lists every command in the order help shows them.
var commands = []*command{
	keysCreateCmd,
	keysImportCmd,
	keysListCmd,
	keysGetCmd,
	keysRevokeCmd,
	keysRotateCmd,
	patsCreateCmd,
	patsListCmd,
	patsGetCmd,
	patsScopesCmd,
	patsAddScopeCmd,
	patsRemoveScopeCmd,
	patsRevokeCmd,
	patsResetCmd,
	requestsListCmd,
	requestsGetCmd,
	requestsApproveCmd,
	requestsDenyCmd,
	agentsRevokeCmd,
	revokeJWTCmd,
	revocationsListCmd,
	auditCmd,
	trustStatusCmd,
	clusterStatusCmd,
	clusterFingerprintCmd,
	policyShowCmd,
	policyReloadCmd,
	policyExplainCmd,
	policyCheckCmd,
	verifyCmd,
	pingCmd,
	versionCmd,
}

// groups maps the first word of the two-word commands to the list of their
// second words, for the message that asks for one.
var groups = map[string]string{
	"keys":        "create, import, list, get, revoke or rotate",
	"pats":        "create, list, get, scopes, add-scope, remove-scope, revoke or reset",
	"requests":    "list, get, approve or deny",
	"agents":      "revoke",
	"revoke":      "jwt",
	"revocations": "list",
	"trust":       "status",
	"cluster":     "status or fingerprint",
	"policy":      "show, reload, explain or check",
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}
