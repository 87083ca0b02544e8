package adminclient_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

func TestPATs(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	ctx := t.Context()
	scope := adminclient.PATScope{Domain: "d1", EntityType: "clients", Operation: "create", EntityID: "*"}

	p, err := c.CreatePAT(ctx, adminclient.PATSpec{Subject: "alice", Name: "ci", Duration: adminclient.Duration(48 * time.Hour), Scopes: []adminclient.PATScope{scope}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Secret, "pat_"+p.ID+"_") || p.Subject != "alice" || p.Creator != "admin" || p.ExpiresAt.Sub(p.CreatedAt) != 48*time.Hour {
		t.Fatalf("CreatePAT = %+v", p)
	}
	if res, err := c.Verify(ctx, p.Secret, "domains/d1/clients:create"); err != nil || !res.Allow {
		t.Fatalf("the PAT does not verify: %+v, %v", res, err)
	}
	if l, err := c.ListPATs(ctx, "alice"); err != nil || len(l) != 1 || l[0].ID != p.ID || l[0].Secret != "" {
		t.Errorf("ListPATs = %+v, %v", l, err)
	}
	if l, err := c.ListPATs(ctx, "bob"); err != nil || len(l) != 0 {
		t.Errorf("ListPATs(bob) = %+v, %v", l, err)
	}

	view := adminclient.PATScope{Domain: "d1", EntityType: "dashboards", Operation: "view", EntityID: "db-1"}
	if got, err := c.AddPATScopes(ctx, p.ID, []adminclient.PATScope{view}); err != nil || len(got.Scopes) != 2 {
		t.Fatalf("AddPATScopes = %+v, %v", got, err)
	}
	l, err := c.PATScopes(ctx, p.ID)
	if err != nil || !reflect.DeepEqual(l.Scopes, []adminclient.PATScope{scope, view}) || !reflect.DeepEqual(l.Patterns, []string{"domains/d1/clients:create", "domains/d1/dashboards/db-1:read"}) {
		t.Errorf("PATScopes = %+v, %v", l, err)
	}
	_, err = c.AddPATScopes(ctx, p.ID, []adminclient.PATScope{{Domain: "d1", EntityType: "robots", Operation: "read", EntityID: "*"}})
	var ae *adminclient.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "unknown entity type") {
		t.Errorf("a bad scope: %v", err)
	}
	if got, err := c.RemovePATScopes(ctx, p.ID, []adminclient.PATScope{scope}); err != nil || len(got.Scopes) != 1 || got.Patterns[0] != "domains/d1/dashboards/db-1:read" {
		t.Errorf("RemovePATScopes = %+v, %v", got, err)
	}

	r, err := c.ResetPAT(ctx, p.ID, time.Hour)
	if err != nil || r.Secret == "" || r.Secret == p.Secret || r.ID != p.ID {
		t.Fatalf("ResetPAT = %+v, %v", r, err)
	}
	if res, err := c.Verify(ctx, p.Secret, ""); err != nil || res.Allow {
		t.Errorf("the old secret after a reset: %+v, %v", res, err)
	}
	if got, err := c.RevokePAT(ctx, p.ID); err != nil || got.Status != adminclient.KeyRevoked {
		t.Errorf("RevokePAT = %+v, %v", got, err)
	}
	if got, err := c.GetPAT(ctx, p.ID); err != nil || got.Status != adminclient.KeyRevoked {
		t.Errorf("GetPAT = %+v, %v", got, err)
	}

	// A key that is not a PAT is not found as one.
	k, err := c.CreateKey(ctx, adminclient.KeySpec{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPAT(ctx, k.ID); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("GetPAT of an API key: %v", err)
	}

	for name, call := range map[string]func() error{
		"no subject":    func() error { _, err := c.CreatePAT(ctx, adminclient.PATSpec{Name: "x"}); return err },
		"no name":       func() error { _, err := c.CreatePAT(ctx, adminclient.PATSpec{Subject: "x"}); return err },
		"bad id":        func() error { _, err := c.GetPAT(ctx, "../keys"); return err },
		"no scopes":     func() error { _, err := c.AddPATScopes(ctx, p.ID, nil); return err },
		"negative time": func() error { _, err := c.ResetPAT(ctx, p.ID, -time.Hour); return err },
	} {
		if err := call(); !errors.Is(err, adminclient.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}
