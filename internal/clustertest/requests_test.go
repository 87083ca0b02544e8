package clustertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// TestAccessRequestAcrossNodes: an agent asks for a key on a, the admin
// approves on b, the agent reads the decision on c, and its key verifies
// on a: the request, its state and the key it yields are shared.
func TestAccessRequestAcrossNodes(t *testing.T) {
	c := newTestCluster(t, 1, "a", "b", "c")
	a, b, cn := c.node("a"), c.node("b"), c.node("c")

	code, body, err := a.call(http.MethodPost, "/v1/auth/request", false, map[string]string{"agent_id": "agent-7", "name": "build agent"})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("request on a: %d %s %v", code, body, err)
	}
	var req struct {
		Token string `json:"request_token"`
		ID    string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Token == "" || req.ID == "" {
		t.Fatalf("request answer %s: %v", body, err)
	}

	var approved struct {
		AgentKey string `json:"agent_key"`
		KeyID    string `json:"key_id"`
	}
	waitUntil(t, propagationBound, "node b to approve the request made on a", func() (bool, string) {
		code, body, err := b.call(http.MethodPost, "/v1/admin/requests/"+req.ID+"/approve", true, map[string]any{"scopes": []string{testScope}})
		if err != nil {
			return false, err.Error()
		}
		if code == http.StatusNotFound { // not applied on b yet
			return false, string(body)
		}
		if code != http.StatusOK {
			t.Fatalf("approve on b: %d %s", code, body)
		}
		if err := json.Unmarshal(body, &approved); err != nil || approved.AgentKey == "" {
			t.Fatalf("approve answer %s: %v", body, err)
		}
		return true, ""
	})

	waitUntil(t, propagationBound, "node c to show the request approved", func() (bool, string) {
		var st struct {
			Status string `json:"status"`
			KeyID  string `json:"key_id"`
		}
		if err := cn.getJSON("/v1/auth/status/"+req.Token, &st); err != nil {
			return false, err.Error()
		}
		if st.Status == "approved" && st.KeyID != approved.KeyID {
			t.Fatalf("node c: approved with key %q, want %q", st.KeyID, approved.KeyID)
		}
		return st.Status == "approved", fmt.Sprintf("%+v", st)
	})
	a.waitVerify(t, approved.AgentKey, "ok", propagationBound, "unknown")

	// The same agent asking again on c is refused: it holds a live key.
	code, body, err = cn.call(http.MethodPost, "/v1/auth/request", false, map[string]string{"agent_id": "agent-7", "name": "build agent"})
	if err != nil || code != http.StatusConflict {
		t.Fatalf("second request on c: %d %s %v, want 409", code, body, err)
	}
	c.waitConverged(t)
}
