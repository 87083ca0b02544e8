package rabbitmq

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{Username: UsernameMatch, Scopes: Scopes{DefaultVhostScope, DefaultResourceScope, DefaultTopicScope},
		MaxBindings: DefaultMaxBindings, BindingTTL: DefaultBindingTTL}
	if c.Enabled || c.Username != want.Username || c.Scopes != want.Scopes || c.MaxBindings != want.MaxBindings || c.BindingTTL != want.BindingTTL {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
}

func TestConfigYAML(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(`enabled: true
username: ignore
scopes:
  vhost: "mq:{vhost}"
tags:
  admin: [administrator, management]
max_bindings: 10
binding_ttl: 1h
`))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Enabled || c.Username != UsernameIgnore || c.Scopes.Vhost != "mq:{vhost}" || c.Scopes.Resource != DefaultResourceScope ||
		len(c.Tags["admin"]) != 2 || c.MaxBindings != 10 || c.BindingTTL != time.Hour {
		t.Errorf("decoded %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{
		Username:    "exact",
		Scopes:      Scopes{Vhost: "{vhost", Topic: "t/{name}:{permission}"},
		Tags:        map[string][]string{"admin": {"Administrator", "ok_tag-1", ""}, "ops": {"verifyd-x", "a b"}},
		MaxBindings: -1,
		BindingTTL:  -time.Second,
	}
	c.EnsureDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("an invalid config is valid")
	}
	for _, want := range []string{
		`rabbitmq.username: "exact"`,
		"rabbitmq.max_bindings",
		"rabbitmq.binding_ttl",
		`rabbitmq.tags.admin: "Administrator"`,
		`rabbitmq.tags.admin: ""`,
		`rabbitmq.tags.ops: "verifyd-x"`,
		`rabbitmq.tags.ops: "a b"`,
		"rabbitmq.scopes.vhost",
		"rabbitmq.scopes.topic",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not report %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "ok_tag-1") {
		t.Errorf("a valid tag is reported:\n%v", err)
	}
	if _, err := New(c, nil, nil); err == nil {
		t.Error("New accepts no verifier")
	}
}
