package mqtt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/verifyd/verifyd/rbac"
)

// Config configures the MQTT adapters: the mosquitto-go-auth HTTP backend
// under /v1/compat/mqtt/ and EMQX's HTTP authentication and authorization
// under /v1/compat/emqx/. The YAML keys are the snake_case names in the
// field tags (section mqtt of the daemon's configuration); README.md and
// docs/integrations/mqtt.md document each one.
type Config struct {
	// Enabled serves both contracts. Default false.
	Enabled bool `yaml:"enabled"`
	// Scope is the template of the scope a topic needs: {topic} is the
	// topic or topic filter, {action} publish or subscribe (see the
	// package documentation). Default "mqtt/topic/{topic}:{action}".
	Scope string `yaml:"scope"`
	// Username says whether an MQTT username must equal the subject of
	// the credential presented as the password: "match" (the default)
	// or "ignore".
	Username string `yaml:"username"`
	// ResponseMode is how mosquitto-go-auth reads answers, its
	// auth_opt_http_response_mode: "status" (the default), "json" or
	// "text". EMQX answers do not depend on it.
	ResponseMode string `yaml:"response_mode"`
	// SuperuserRole makes a credential carrying this role (in its own
	// roles: a key's roles, a JWT's roles claim) a superuser, allowed
	// every topic. "" (the default): no role does.
	SuperuserRole string `yaml:"superuser_role"`
	// SuperuserScope makes a credential that the policy grants this scope
	// a superuser. "" (the default): no scope does.
	SuperuserScope string `yaml:"superuser_scope"`
	// MaxBindings bounds the clients whose token is remembered for their
	// ACL checks. Default 65536.
	MaxBindings int `yaml:"max_bindings"`
}

// The values of Config.Username.
const (
	UsernameMatch  = "match"
	UsernameIgnore = "ignore"
)

// The values of Config.ResponseMode: mosquitto-go-auth's response modes.
const (
	ResponseStatus = "status"
	ResponseJSON   = "json"
	ResponseText   = "text"
)

// DefaultMaxBindings is the default of Config.MaxBindings.
const DefaultMaxBindings = 65536

// EnsureDefaults fills in unset fields.
func (c *Config) EnsureDefaults() {
	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if c.Username == "" {
		c.Username = UsernameMatch
	}
	if c.ResponseMode == "" {
		c.ResponseMode = ResponseStatus
	}
	if c.MaxBindings == 0 {
		c.MaxBindings = DefaultMaxBindings
	}
}

// Validate reports every problem of c at once; call EnsureDefaults first.
func (c *Config) Validate() error {
	_, err := c.compile()
	return err
}

// compile checks c and returns its scope template.
func (c *Config) compile() (scopeTemplate, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("mqtt."+format, args...)) }
	st, err := parseTemplate(c.Scope)
	if err != nil {
		bad("scope: %v", err)
	}
	if c.Username != UsernameMatch && c.Username != UsernameIgnore {
		bad("username: %q is not match or ignore", c.Username)
	}
	switch c.ResponseMode {
	case ResponseStatus, ResponseJSON, ResponseText:
	default:
		bad("response_mode: %q is not status, json or text (auth_opt_http_response_mode of mosquitto-go-auth)", c.ResponseMode)
	}
	if c.SuperuserRole != "" && strings.TrimSpace(c.SuperuserRole) != c.SuperuserRole {
		bad("superuser_role: %q has leading or trailing spaces", c.SuperuserRole)
	}
	if c.SuperuserScope != "" {
		if err := rbac.ValidateScope(c.SuperuserScope); err != nil {
			bad("superuser_scope: %v", err)
		} else if strings.ContainsRune(c.SuperuserScope, rbac.Wildcard) {
			bad("superuser_scope: %q holds '*': name one literal scope, such as mqtt:superuser", c.SuperuserScope)
		}
	}
	if c.MaxBindings <= 0 {
		bad("max_bindings: %d must be positive", c.MaxBindings)
	}
	return st, errors.Join(errs...)
}
