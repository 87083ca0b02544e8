package throttle

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the throttle section of the daemon's configuration. Start
// from DefaultConfig: a zero field means zero (no accounting), not the
// default.
type Config struct {
	// Enabled switches all throttling on or off. Default true.
	Enabled bool `yaml:"enabled"`
	// Failures is the number of failed verifications from one source
	// within Window that puts the source in a cool-down. Default 20; 0
	// counts no source.
	Failures int `yaml:"failures"`
	// KeyFailures is the number of failed verifications presenting one
	// PAT id within Window that puts that id in a cool-down. Default 20; 0
	// counts no id.
	KeyFailures int `yaml:"key_failures"`
	// Window is the span failures are counted over, from a source's first
	// failure. Default 10s.
	Window time.Duration `yaml:"window"`
	// Cooldown is how long a source or id that reached its threshold is
	// answered rate_limited. Default 60s.
	Cooldown time.Duration `yaml:"cooldown"`
	// Entries bounds the sources, and separately the PAT ids, that are
	// remembered at once: fixed tables, allocated at start, whose least
	// useful entry makes room for a new one. Default 65536 each.
	Entries int `yaml:"entries"`
	// TrustedProxies lists the addresses or CIDR prefixes of gateways and
	// brokers that ask on behalf of other clients over HTTP. A request from
	// one is counted for the client that ClientIPHeader names, or for no
	// source when it names none. Default: the loopback addresses.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ClientIPHeader is the header a trusted proxy names its client in:
	// X-Forwarded-For (the rightmost address not itself a trusted proxy)
	// or a header holding one address, such as X-Real-IP. Default
	// X-Forwarded-For.
	ClientIPHeader string `yaml:"client_ip_header"`
	// SocketPeers counts failures on the Unix socket per peer uid. Default
	// false: the socket's peers are brokers that ask for all their clients.
	SocketPeers bool `yaml:"socket_peers"`
	// RoleRateLimits gives the credentials that hold a role (globally) a
	// rate limit, such as "100/s"; a key's own "rate_limit" metadata takes
	// precedence. A credential with several limited roles gets the highest
	// rate.
	RoleRateLimits map[string]string `yaml:"role_rate_limits"`
	// Credentials bounds the credentials whose rate-limit buckets are
	// remembered at once. Default 65536.
	Credentials int `yaml:"credentials"`
}

// DefaultConfig returns the built-in throttle configuration: on, 20
// failures in 10s from one source (or presenting one PAT id) lead to a
// 60s cool-down, loopback callers are trusted proxies, and no credential
// is rate-limited.
func DefaultConfig() Config {
	return Config{
		Enabled:        true,
		Failures:       20,
		KeyFailures:    20,
		Window:         10 * time.Second,
		Cooldown:       60 * time.Second,
		Entries:        1 << 16,
		TrustedProxies: []string{"127.0.0.0/8", "::1/128"},
		ClientIPHeader: "X-Forwarded-For",
		Credentials:    1 << 16,
	}
}

// Limits on the configuration.
const (
	maxEntries   = 1 << 24
	minEntries   = 64
	maxThreshold = 1 << 30
)

// Validate reports every problem of c at once. A disabled configuration is
// not checked.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("throttle."+format, args...)) }
	if c.Failures < 0 || c.Failures > maxThreshold {
		bad("failures %d must be between 0 (no source is counted) and %d", c.Failures, maxThreshold)
	}
	if c.KeyFailures < 0 || c.KeyFailures > maxThreshold {
		bad("key_failures %d must be between 0 (no PAT id is counted) and %d", c.KeyFailures, maxThreshold)
	}
	if c.Window <= 0 {
		bad("window must be a positive duration such as \"10s\"")
	}
	if c.Cooldown <= 0 {
		bad("cooldown must be a positive duration such as \"60s\"")
	}
	if c.Entries < minEntries || c.Entries > maxEntries {
		bad("entries %d must be between %d and %d", c.Entries, minEntries, maxEntries)
	}
	if c.Credentials < minEntries || c.Credentials > maxEntries {
		bad("credentials %d must be between %d and %d", c.Credentials, minEntries, maxEntries)
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.ClientIPHeader == "" || strings.ContainsAny(c.ClientIPHeader, " :\t\r\n") {
		bad("client_ip_header %q must be a header name such as X-Forwarded-For or X-Real-IP", c.ClientIPHeader)
	}
	roles := make([]string, 0, len(c.RoleRateLimits))
	for role := range c.RoleRateLimits {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		if role == "" {
			bad("role_rate_limits has an empty role name")
		}
		if _, err := ParseRate(c.RoleRateLimits[role]); err != nil {
			bad("role_rate_limits.%s: %v", role, err)
		}
	}
	return errors.Join(errs...)
}

// parsePrefixes parses addresses and CIDR prefixes; an address is a
// prefix of its full length.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("throttle.trusted_proxies: %q is not an IP address or CIDR prefix such as 10.0.0.0/8", s))
			continue
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, errors.Join(errs...)
}

// A Rate is a credential's rate limit: at most Count requests per Per, in
// bursts of up to Count. The zero Rate means no limit.
type Rate struct {
	Count int64
	Per   time.Duration
}

// Units of a rate, in the order they are accepted.
var rateUnits = []struct {
	name string
	d    time.Duration
}{{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}

// ParseRate parses a rate limit written "<count>/<unit>", where count is
// a positive integer and unit is s, m or h: "100/s", "600/m", "1000/h".
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate limit %q is not <count>/<unit> such as \"100/s\" (units: s, m, h)", s)
	}
	for _, u := range rateUnits {
		if unit != u.name {
			continue
		}
		c, err := strconv.ParseInt(n, 10, 64)
		if err != nil || c <= 0 || c > int64(u.d) || n[0] == '+' {
			return Rate{}, fmt.Errorf("rate limit %q: the count must be a whole number from 1 to %d", s, int64(u.d))
		}
		return Rate{Count: c, Per: u.d}, nil
	}
	return Rate{}, fmt.Errorf("rate limit %q: the unit must be s, m or h", s)
}

// String returns r as ParseRate reads it, or "" for the zero Rate.
func (r Rate) String() string {
	for _, u := range rateUnits {
		if r.Per == u.d {
			return strconv.FormatInt(r.Count, 10) + "/" + u.name
		}
	}
	if r.Count == 0 {
		return ""
	}
	return strconv.FormatInt(r.Count, 10) + "/" + r.Per.String()
}

// interval is the time one request uses up: Per/Count, at least 1ns.
func (r Rate) interval() int64 { return max(int64(r.Per)/r.Count, 1) }

// faster reports whether r allows more requests per unit of time than o.
func (r Rate) faster(o Rate) bool { return o.Count == 0 || r.interval() < o.interval() }
