// Package lint holds verifyd's project-specific lint rules, written as Go
// tests so that `make test` enforces them: the direction of imports between
// packages, fasthttp confined to ipc/httpapi and the broker adapters under
// ipc/compat, jwx confined to verify/trust
// (key sets only, never tokens), no fmt.Print outside cmd/, and typed atomics
// only.
package lint
