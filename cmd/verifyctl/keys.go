package main

import (
	"context"
	"flag"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

// specFlags are the flags that describe a key, shared by keys create and
// keys import.
type specFlags struct {
	subject, kind, name, description string
	scopes, roles                    listValue
	projectRoles                     projectRolesValue
	meta                             metaValue
	expiresIn                        time.Duration
}

func (f *specFlags) register(fs *flag.FlagSet) {
	f.projectRoles = make(projectRolesValue)
	f.meta = make(metaValue)
	fs.StringVar(&f.subject, "subject", "", "")
	fs.StringVar(&f.kind, "kind", "", "")
	fs.StringVar(&f.name, "name", "", "")
	fs.StringVar(&f.description, "description", "", "")
	fs.Var(&f.scopes, "scope", "")
	fs.Var(&f.roles, "role", "")
	fs.Var(f.projectRoles, "project-role", "")
	fs.Var(f.meta, "meta", "")
	fs.DurationVar(&f.expiresIn, "expires-in", 0, "")
}

// keySpec checks the flags and returns the spec they describe.
func (f *specFlags) keySpec(cmd string) (adminclient.KeySpec, error) {
	if f.subject == "" {
		return adminclient.KeySpec{}, usagef(cmd, "--subject is required")
	}
	if f.expiresIn < 0 {
		return adminclient.KeySpec{}, usagef(cmd, "--expires-in must not be negative")
	}
	spec := adminclient.KeySpec{
		Subject:     f.subject,
		Kind:        f.kind,
		Name:        f.name,
		Description: f.description,
		Scopes:      f.scopes,
		Roles:       f.roles,
		ExpiresIn:   adminclient.Duration(f.expiresIn),
	}
	if len(f.projectRoles) > 0 {
		spec.ProjectRoles = f.projectRoles
	}
	if len(f.meta) > 0 {
		spec.Metadata = f.meta
	}
	return spec, nil
}

// specFlagsHelp documents the specFlags; kindHelp describes --kind, whose
// default depends on the command.
func specFlagsHelp(kindHelp string) string {
	return `  --subject S                 who the key belongs to (required)
  --kind K                    ` + kindHelp + `
  --name N                    short label
  --description D             free text
  --scope P                   granted scope pattern, e.g. tool:data:* (repeatable)
  --role R                    global role (repeatable)
  --project-role P=R          role R in project, domain or realm P (repeatable)
  --meta K=V                  metadata entry (repeatable)
  --expires-in D              validity as a Go duration, e.g. 720h
                              (default: the daemon's default for the kind)
`
}

var keysCreateCmd = &command{
	name: "keys create",
	synopsis: "keys create --subject S [--kind api_key|agent|pat] [--name N] [--description D]\n" +
		"                [--scope P]... [--role R]... [--project-role project=role]...\n" +
		"                [--meta k=v]... [--expires-in 720h]",
	summary: "create a key; its secret is shown once",
	help: `Creates a key and prints its secret, which the daemon shows only this once.

In table mode the secret alone goes to standard output and the key's details,
with a reminder to store the secret, go to standard error:

  verifyctl keys create --subject alice --scope 'tool:data:*' > alice.key

With -o json the whole key, secret included, goes to standard output.

Flags:
` + specFlagsHelp("api_key (the default), agent or pat"),
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var f specFlags
		f.register(fs)
		return func(ctx context.Context, s *session, _ []string) error {
			spec, err := f.keySpec("keys create")
			if err != nil {
				return err
			}
			c, err := s.client(true)
			if err != nil {
				return err
			}
			k, err := c.CreateKey(ctx, spec)
			if err != nil {
				return err
			}
			return s.printNewSecret(k, "created")
		}
	},
}

var keysImportCmd = &command{
	name:     "keys import",
	synopsis: "keys import --subject S [other keys create flags] (--secret-file F | --secret-stdin)",
	summary:  "store an existing secret as a key",
	help: `Stores an existing secret (an AMS key, a legacy relay key, ...) as a key, so
that it verifies like one created here. The daemon keeps only its hash and does
not echo it back.

The secret is read from a file or standard input, never from the command line,
where other users could see it in ps and the shell would keep it in its
history. One trailing newline is ignored.

  verifyctl keys import --subject relay --secret-file relay.key
  vault kv get -field=key secret/relay | verifyctl keys import --subject relay --secret-stdin

Flags:
` + specFlagsHelp("the kind to record (default imported)") + `  --secret-file F             read the secret from file F
  --secret-stdin              read the secret from standard input
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var (
			f         specFlags
			file      string
			fromStdin bool
		)
		f.register(fs)
		fs.StringVar(&file, "secret-file", "", "")
		fs.BoolVar(&fromStdin, "secret-stdin", false, "")
		return func(ctx context.Context, s *session, _ []string) error {
			spec, err := f.keySpec("keys import")
			if err != nil {
				return err
			}
			if (file == "") == !fromStdin {
				return usagef("keys import", "give exactly one of --secret-file and --secret-stdin (a secret is never taken from the command line)")
			}
			c, err := s.client(true)
			if err != nil {
				return err
			}
			secret, err := readSecret(s.stdin, file, "secret")
			if err != nil {
				return usagef("keys import", "%v", err)
			}
			k, err := c.ImportKey(ctx, spec, secret)
			if err != nil {
				return err
			}
			return s.printKey(k)
		}
	},
}

var keysListCmd = &command{
	name:     "keys list",
	synopsis: "keys list [--subject S]",
	summary:  "list keys (never their secrets)",
	help: `Lists keys, those of one subject with --subject. Secrets are never listed.

Flags:
  --subject S                 only the keys of subject S
`,
	maxArgs: 0,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var subject string
		fs.StringVar(&subject, "subject", "", "")
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client(true)
			if err != nil {
				return err
			}
			keys, err := c.ListKeys(ctx, subject)
			if err != nil {
				return err
			}
			return s.printKeys(keys)
		}
	},
}

// idCommand returns a command that takes one id (of a key, a PAT, an
// access request) and prints, with print, what call returns for it.
func idCommand[T any](name, summary, help string, call func(c *adminclient.Client, ctx context.Context, id string) (T, error), print func(*session, T) error) *command {
	return &command{
		name:     name,
		synopsis: name + " ID",
		summary:  summary,
		help:     help,
		minArgs:  1,
		maxArgs:  1,
		bind: func(*flag.FlagSet) func(context.Context, *session, []string) error {
			return func(ctx context.Context, s *session, args []string) error {
				c, err := s.client(true)
				if err != nil {
					return err
				}
				v, err := call(c, ctx, args[0])
				if err != nil {
					return err
				}
				return print(s, v)
			}
		},
	}
}

var keysGetCmd = idCommand("keys get", "show one key",
	"Shows the key with id ID. Its secret is never shown.\n",
	(*adminclient.Client).GetKey, (*session).printKey)

var keysRevokeCmd = idCommand("keys revoke", "revoke a key at once",
	"Revokes the key with id ID: from the moment the command returns, the daemon\n"+
		"refuses its secret. Prints the key as it now is.\n",
	(*adminclient.Client).RevokeKey, (*session).printKey)

var keysRotateCmd = &command{
	name:     "keys rotate",
	synopsis: "keys rotate ID [--grace 10m]",
	summary:  "give a key a new secret, keeping its id",
	help: `Gives the key with id ID a new secret and prints it, as keys create does: in
table mode the secret alone on standard output and the details on standard
error; with -o json the whole key on standard output. The new secret is shown
only this once.

The old secret stops working at once, or after the grace period.

Flags:
  --grace D                   keep the old secret working for D, e.g. 10m
`,
	minArgs: 1,
	maxArgs: 1,
	bind: func(fs *flag.FlagSet) func(context.Context, *session, []string) error {
		var grace time.Duration
		fs.DurationVar(&grace, "grace", 0, "")
		return func(ctx context.Context, s *session, args []string) error {
			if grace < 0 {
				return usagef("keys rotate", "--grace must not be negative")
			}
			c, err := s.client(true)
			if err != nil {
				return err
			}
			k, err := c.RotateKey(ctx, args[0], grace)
			if err != nil {
				return err
			}
			return s.printNewSecret(k, "rotated")
		}
	},
}
