package rabbitmq

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Config configures the adapter: the `rabbitmq:` section of verifyd's
// configuration file. The YAML keys are the snake_case names in the field
// tags; docs/integrations/rabbitmq.md documents each one.
type Config struct {
	// Enabled serves the adapter under [Prefix]. Default false.
	Enabled bool `yaml:"enabled"`
	// Username is "match" (the default): a login's username must be the
	// subject of the credential presented as its password; or "ignore":
	// any username is accepted with a valid credential.
	Username string `yaml:"username"`
	// Scopes are the templates that turn RabbitMQ's questions into
	// scopes; see [NewMapping]. Empty ones take the defaults.
	Scopes Scopes `yaml:"scopes"`
	// Tags maps a role to the RabbitMQ user tags a login whose
	// credential carries the role gets, e.g. admin: [administrator].
	// Tags are lower-case letters, digits, '_' and '-'.
	Tags map[string][]string `yaml:"tags"`
	// MaxBindings bounds the logins remembered for the checks that
	// follow them; the least recently used one is forgotten first, and
	// its connection's later checks are denied. Default 65536.
	MaxBindings int `yaml:"max_bindings"`
	// BindingTTL is how long a login is remembered after it was made,
	// at most until its credential expires. A connection that outlives
	// it has its later checks denied. Default 24h.
	BindingTTL time.Duration `yaml:"binding_ttl"`
}

// Scopes holds the scope templates of a [Config].
type Scopes struct {
	Vhost    string `yaml:"vhost"`
	Resource string `yaml:"resource"`
	Topic    string `yaml:"topic"`
}

// The values of Config.Username.
const (
	UsernameMatch  = "match"
	UsernameIgnore = "ignore"
)

// Defaults of Config.
const (
	DefaultMaxBindings = 65536
	DefaultBindingTTL  = 24 * time.Hour
)

// EnsureDefaults fills in unset fields.
func (c *Config) EnsureDefaults() {
	if c.Username == "" {
		c.Username = UsernameMatch
	}
	if c.Scopes.Vhost == "" {
		c.Scopes.Vhost = DefaultVhostScope
	}
	if c.Scopes.Resource == "" {
		c.Scopes.Resource = DefaultResourceScope
	}
	if c.Scopes.Topic == "" {
		c.Scopes.Topic = DefaultTopicScope
	}
	if c.MaxBindings == 0 {
		c.MaxBindings = DefaultMaxBindings
	}
	if c.BindingTTL == 0 {
		c.BindingTTL = DefaultBindingTTL
	}
}

// Validate reports every problem of c at once; call EnsureDefaults first.
func (c *Config) Validate() error {
	_, err := c.compile()
	return err
}

// compile checks c and returns its mapping.
func (c *Config) compile() (*Mapping, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("rabbitmq."+format, args...)) }
	if c.Username != UsernameMatch && c.Username != UsernameIgnore {
		bad("username: %q is not match or ignore", c.Username)
	}
	if c.MaxBindings <= 0 {
		bad("max_bindings: %d must be positive", c.MaxBindings)
	}
	if c.BindingTTL <= 0 {
		bad("binding_ttl: %s must be a positive duration such as \"24h\"", c.BindingTTL)
	}
	roles := make([]string, 0, len(c.Tags))
	for r := range c.Tags {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		for _, tag := range c.Tags[r] {
			switch {
			case !validTag(tag):
				bad("tags.%s: %q is not a tag (lower-case letters, digits, '_' and '-')", r, tag)
			case strings.HasPrefix(tag, bindingTagPrefix):
				bad("tags.%s: %q: tags starting with %q are reserved for verifyd's login bindings", r, tag, bindingTagPrefix)
			}
		}
	}
	m, err := NewMapping(c.Scopes.Vhost, c.Scopes.Resource, c.Scopes.Topic)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// validTag reports whether tag is a non-empty run of [a-z0-9_-].
func validTag(tag string) bool {
	if tag == "" {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
