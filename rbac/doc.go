// Package rbac owns verifyd's scope grammar, its authorization policy, and
// the compiled structures that answer "may this principal act on this
// scope?". It does not verify credentials, read files or count decisions:
// verify builds the [Principal], cmd reads the policy file, and the
// metrics belong to their callers.
//
// # Scopes and patterns
//
// A scope is a string of ':'-separated segments, for example tool:data:read or
// projects/p1/topics/orders:publish. A granted pattern has the same shape and
// may use one '*' inside any segment: it matches any run of characters other
// than ':' (possibly empty), so agent:data_*:delegate matches
// agent:data_sales:delegate but not agent:data_x:y:delegate. The whole pattern
// "*" is the super-scope and matches every scope. Otherwise a pattern matches
// only scopes with the same number of segments. Matching is case-sensitive and
// byte-exact: no percent-decoding, no normalization.
//
// Segments use the path characters of RFC 3986 §3.3 other than ':':
//
//	A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) + , ; = @ / %
//
// In a pattern, '*' may appear at most once per segment. A requested scope may
// contain '*' too; it is then an ordinary character, and since a pattern's
// literal parts never contain '*', a pattern matches such a scope only when it
// covers every scope the wildcard could stand for.
//
// Invalid patterns (empty, an empty segment, two '*' in a segment, a character
// outside the alphabet, longer than [MaxLen]) are rejected by [Compile] with a
// [PatternError] naming the pattern and the reason.
//
// By convention the last segment of a scope is the action and the rest names
// the resource: in projects/p1/topics/orders:publish the resource is
// projects/p1/topics/orders and the action publish. ACLs rely on it.
//
// # Policies
//
// A policy is one YAML document ([ParsePolicy]); testdata/example-policy.yaml
// shows every feature:
//
//	mode: rbac              # deny_all, rbac or none; required
//	stream_auth: true       # optional, default true (see Streams)
//	roles:
//	  viewer:    {scopes: ["tool:data:read"]}
//	  developer: {scopes: ["tool:code:*"], inherits: [viewer]}
//	  admin:     {scopes: ["*"], acl_exempt: true}
//	  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
//	  agent:     {scopes: ["mailbox:${sub}:*"]}
//	subjects:
//	  alice: {roles: [developer], projects: {p1: [publisher]}}
//	acls:
//	  "projects/p1/topics/orders": {publish: [alice, bob]}
//	streams:
//	  mars: {auth: {required: true, read_roles: {ecmwf: ["*"]}, write_roles: {ecmwf: [producer]}}}
//	admin_roles: {ecmwf: [admin]}
//
// Modes. deny_all (the mode of [DefaultPolicy], in force when no policy is
// configured): the policy grants nothing; roles, assignments and stream rules
// are validated but grant nothing, ACLs still narrow. rbac: roles,
// assignments and stream rules grant, ACLs narrow. none (development only):
// every scope is allowed, to every binding, anonymous ones included. In every
// mode but none, the scopes a credential carries itself (a key record's
// scopes, a PAT's scopes, a JWT's scope claim) apply.
//
// Roles. A role has scopes (patterns) and inherits (role names): holding a
// role means holding the patterns of every role it inherits, transitively.
// Cycles and unknown roles are load errors. A role may declare no scopes: its
// name can still match stream and admin rules. acl_exempt: true makes the
// role's own patterns pass ACLs (service and project administrators).
//
// Templates. ${sub} is the principal's subject, ${realm} its realm (a JWT's),
// ${project} the project of the assignment. Any other ${...} is a load error.
// A value must be a non-empty run of scope characters without '/', ':' or
// '*'; when a pattern needs a value that is missing or invalid, the pattern
// is dropped (it grants nothing) rather than widened: a subject "a*" or
// "a/../b" gets no mailbox from mailbox:${sub}:*.
//
// Assignments. A principal's roles are the union of the policy's subjects
// entry for its Subject (roles, and projects: project -> roles) and of the
// roles the credential carries ([Principal.Roles] and
// [Principal.ProjectRoles]: a key record's roles, a JWT's roles claim).
// Subjects match byte for byte; every trust source shares the one namespace.
// Roles named by subjects must be declared; roles carried by a credential
// need not be (an undeclared one grants no pattern, but may match a stream
// or admin rule).
//
// Projects. A role assigned per project (or domain, or realm) grants only
// inside that project: only its patterns that use ${project}, filled with
// the project, apply. The policy makes this a load error: a role assigned
// under subjects.*.projects whose closure has a pattern without ${project}
// is rejected, so the file cannot say something it does not do. A credential
// carrying such an assignment is bound with those patterns dropped (Explain
// shows them), never applied outside the project. Project names in the
// policy follow the template value rules.
//
// ACLs. acls maps a resource to actions to subjects. For a scope
// <resource>:<action> with an ACL, the subject must be listed in addition to
// holding a grant: an ACL narrows, never widens, and binds every grant (own
// scopes, roles, stream rules) except the patterns of acl_exempt roles. An
// anonymous request is on no ACL. Resources and actions are literal: a
// requested scope holding '*' meets only the ACL of that literal scope in
// Decide, so a caller whose request stands for many scopes (an MQTT topic
// filter) also asks [Policy.ACLsAdmit] about the ACLs of the scopes it
// stands for.
//
// # Streams
//
// Stream rules follow Aviso's. The table below is the one of the
// aviso-server documentation, "Authentication", sections "Per-Stream
// Authentication" (Read vs. write access defaults, Role matching rules) and
// "Disabling Authentication"
// (https://sites.ecmwf.int/docs/aviso-server/main/authentication.html,
// docs/src/authentication.md in github.com/ecmwf/aviso-server), with the
// start-up check of its configuration reference ("Startup fails if global
// auth is disabled while a schema sets auth.required=true or non-empty
// auth.read_roles/auth.write_roles",
// https://sites.ecmwf.int/docs/aviso-server/main/configuration-reference.html).
// The scope of a stream operation is streams/<name>:read (Aviso's watch and
// replay) or streams/<name>:write (notify), and for a stream the policy
// declares:
//
//	auth.required       read_roles  write_roles  read                    write
//	false, or no auth   -           -            anyone                  anyone
//	true                omitted     omitted      any authenticated user  admins only
//	true                set         omitted      must match read_roles   admins only
//	true                omitted     set          any authenticated user  must match write_roles or be admin
//	true                set         set          must match read_roles   must match write_roles or be admin
//
// read_roles and write_roles map realm -> roles. A principal belongs to its
// own realm (a JWT's realm claim), where it holds its global roles, and to
// every realm it has roles in per project (a key record's project roles, a
// subjects entry's projects); roles count with everything they inherit. It
// matches a realm's list by holding one of its roles there, or, for the list
// ["*"], by belonging to the realm. admin_roles (realm -> roles, "*" allowed)
// name the admins, who read and write every stream. As in Aviso, an auth
// block must set required explicitly; roles with required: false are a load
// error; and stream_auth: false (Aviso's auth.enabled: false) opens every
// stream, making a stream that requires authentication or names roles a load
// error. A stream rule is one more grant source, tried after the principal's
// own scopes and roles; streams/<name> scopes of undeclared streams, and
// other actions, are ordinary scopes.
//
// # Deciding
//
// [Policy.Bind] resolves a principal once: it merges its assignments, fills
// templates and compiles the patterns of each distinct set of assignments
// into one [Matcher], memoised per policy (bounded), so that the next
// principal with the same roles costs a lookup. [Binding.Decide] then answers
// each scope: mode none allows; otherwise the principal's own scopes, its
// roles' patterns and the stream rule are tried in turn, and an ACL narrows
// the grant found. The [Decision] names the granting role, project and
// pattern, or a [Reason] for a denial. [Policy.Explain] lists every
// candidate considered, for operators.
//
// A policy file is one YAML document. Keys are unique, unknown fields are
// errors, and YAML aliases and merge keys are not supported. [ParsePolicy]
// reports every problem at once in a [PolicyError], each with its line,
// column and path (roles.developer.inherits[0]). yaml.Marshal of a Policy
// writes its canonical form ([Policy.MarshalYAML]), which loads to an
// [Policy.Equal] policy.
//
// # Concurrency and allocation
//
// A [Matcher] is immutable once compiled and safe for concurrent use.
// [Matcher.Match] allocates nothing. A [Policy] and a [Binding] are
// immutable too (the policy's memo is internally synchronised) and safe for
// concurrent use; [Binding.Decide] allocates nothing and takes no lock.
// Policies are swapped by replacing the pointer to one, never by mutating
// one; a Binding remembers its policy ([Binding.Policy]), so that a cache of
// bindings can tell a stale one.
//
// rbac is pure: it performs no I/O and imports no other verifyd package.
package rbac
