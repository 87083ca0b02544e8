package main

import (
	"fmt"
	"strings"
)

// listValue is a repeatable flag collecting every value given, in order.
type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }

func (v *listValue) Set(s string) error {
	if s == "" {
		return fmt.Errorf("empty value")
	}
	*v = append(*v, s)
	return nil
}

// projectRolesValue is the repeatable --project-role project=role flag.
type projectRolesValue map[string][]string

func (v projectRolesValue) String() string { return "" }

func (v projectRolesValue) Set(s string) error {
	project, role, ok := strings.Cut(s, "=")
	if !ok || project == "" || role == "" {
		return fmt.Errorf("want project=role, got %q", s)
	}
	v[project] = append(v[project], role)
	return nil
}

// metaValue is the repeatable --meta key=value flag.
type metaValue map[string]string

func (v metaValue) String() string { return "" }

func (v metaValue) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if _, dup := v[k]; dup {
		return fmt.Errorf("metadata key %q given twice", k)
	}
	v[k] = val
	return nil
}
