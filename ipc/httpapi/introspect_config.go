package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"unicode"
	"unicode/utf8"
)

// IntrospectionConfig is the introspection section of the daemon
// configuration: the clients that may call POST /v1/introspect. No client
// means the endpoint answers every caller 401.
type IntrospectionConfig struct {
	Clients []IntrospectionClientConfig `yaml:"clients"`
}

// IntrospectionClientConfig is one introspection client as configured: its
// id and where its secret is, exactly one of SecretEnv and SecretFile. The
// secret itself never appears in the configuration file.
type IntrospectionClientConfig struct {
	// ID is the client_id the client authenticates with.
	ID string `yaml:"id"`
	// SecretEnv names the environment variable holding the secret, read
	// once at start.
	SecretEnv string `yaml:"secret_env"`
	// SecretFile is a file holding the secret, read once at start; one
	// trailing line break is not part of the secret.
	SecretFile string `yaml:"secret_file"`
}

// IntrospectionClient is an introspection client ready for [Options]: its
// id and its secret. It logs as its id only.
type IntrospectionClient struct {
	ID     string
	Secret string
}

// LogValue returns the client's id: the secret never reaches a log.
func (c IntrospectionClient) LogValue() slog.Value { return slog.StringValue(c.ID) }

// Limits on introspection clients.
const (
	// MinIntrospectionSecretBytes is the shortest client secret accepted.
	MinIntrospectionSecretBytes = 16
	// maxIntrospectionSecretBytes bounds a secret, and a secret file.
	maxIntrospectionSecretBytes = 1024
	maxIntrospectionIDBytes     = 256
)

// Validate checks the section without reading any secret: every client
// has a unique id of printable UTF-8 and exactly one secret source. It
// reports every problem at once.
func (c *IntrospectionConfig) Validate() error {
	var errs []error
	seen := make(map[string]bool, len(c.Clients))
	for i, cl := range c.Clients {
		at := fmt.Sprintf("introspection.clients[%d]", i)
		switch {
		case cl.ID == "":
			errs = append(errs, fmt.Errorf("%s: id is empty", at))
		case len(cl.ID) > maxIntrospectionIDBytes || !printableID(cl.ID):
			errs = append(errs, fmt.Errorf("%s: id must be 1 to %d bytes of printable UTF-8", at, maxIntrospectionIDBytes))
		case seen[cl.ID]:
			errs = append(errs, fmt.Errorf("%s: id %q is used by an earlier client", at, cl.ID))
		}
		seen[cl.ID] = true
		if (cl.SecretEnv == "") == (cl.SecretFile == "") {
			errs = append(errs, fmt.Errorf("%s (%s): exactly one of secret_env and secret_file must be set", at, cl.ID))
		}
	}
	return errors.Join(errs...)
}

// Load validates the section, reads every client's secret (environment
// variables through getenv) and returns the clients. A secret must be at
// least [MinIntrospectionSecretBytes] long. Every problem is reported at
// once; no error names a secret.
func (c *IntrospectionConfig) Load(getenv func(string) string) ([]IntrospectionClient, error) {
	errs := []error{c.Validate()}
	out := make([]IntrospectionClient, 0, len(c.Clients))
	for i, cl := range c.Clients {
		at := fmt.Sprintf("introspection.clients[%d] (%s)", i, cl.ID)
		var secret, from string
		switch {
		case cl.SecretEnv != "" && cl.SecretFile == "":
			secret, from = getenv(cl.SecretEnv), "environment variable "+cl.SecretEnv
			if secret == "" {
				errs = append(errs, fmt.Errorf("%s: environment variable %s is not set or empty", at, cl.SecretEnv))
				continue
			}
		case cl.SecretFile != "" && cl.SecretEnv == "":
			var err error
			if secret, err = readSecretFile(cl.SecretFile); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
				continue
			}
			from = "file " + cl.SecretFile
		default:
			continue // reported by Validate
		}
		switch {
		case len(secret) < MinIntrospectionSecretBytes:
			errs = append(errs, fmt.Errorf("%s: the secret in %s is %d bytes, shorter than %d", at, from, len(secret), MinIntrospectionSecretBytes))
		case len(secret) > maxIntrospectionSecretBytes:
			errs = append(errs, fmt.Errorf("%s: the secret in %s is longer than %d bytes", at, from, maxIntrospectionSecretBytes))
		default:
			out = append(out, IntrospectionClient{ID: cl.ID, Secret: secret})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// readSecretFile reads a secret file, without one trailing line break.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("secret_file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIntrospectionSecretBytes+3))
	if err != nil {
		return "", fmt.Errorf("secret_file %s: %w", path, err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return string(b), nil
}

// printableID reports whether s is valid UTF-8 without control characters.
func printableID(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
