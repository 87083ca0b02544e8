package trust

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a [Registry]'s environment. A nil *Options means all
// defaults. New works on a copy and never modifies the caller's Options.
type Options struct {
	// HTTPClient fetches key sets and discovery documents. nil means a
	// client with http.DefaultTransport. Whatever the client, redirects are
	// limited to 5 and never lead from https to http, and every request is
	// bounded by Config.FetchTimeout.
	HTTPClient *http.Client

	// Now is the clock of staleness, last-success times, the unknown-kid
	// rate limit and the age of OIDC discovery documents. Refresh intervals
	// run on real timers. nil means time.Now.
	Now func() time.Time

	// Getenv reads the environment variables that hold secrets
	// (Secret.SecretEnv), once, in New. nil means os.Getenv.
	Getenv func(string) string

	// Registerer receives the registry's metrics. nil means no metrics are
	// registered (they are still counted, and cost the same).
	Registerer prometheus.Registerer

	// Logger receives operational faults. nil means slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults sets every nil field of o, except Registerer, to its
// default value. No value of Options is invalid.
func (o *Options) EnsureDefaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
