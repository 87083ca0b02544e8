package httpapi

import (
	"time"

	"github.com/valyala/fasthttp"
)

// trustSource is one trust source as GET /v1/admin/trust shows it.
type trustSource struct {
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Keys        int        `json:"keys"`
	SkippedKeys int        `json:"skipped_keys"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Stale       bool       `json:"stale"`
}

// handleTrust serves GET /v1/admin/trust: each trust source with its key
// count, the time of its last good load or fetch, its last error and
// whether it has gone stale (and so verifies nothing).
func (s *Server) handleTrust(ctx *fasthttp.RequestCtx) {
	if !s.isAdmin(ctx) || !allowMethod(ctx, fasthttp.MethodGet) {
		return
	}
	out := struct {
		Sources []trustSource `json:"sources"`
	}{Sources: []trustSource{}}
	if s.opts.Trust != nil {
		for _, st := range s.opts.Trust.Status() {
			src := trustSource{
				Name: st.Name, Type: string(st.Type), Keys: st.Keys, SkippedKeys: st.SkippedKeys,
				LastError: st.LastError, Stale: st.Stale,
			}
			if !st.LastSuccess.IsZero() {
				t := st.LastSuccess
				src.LastSuccess = &t
			}
			out.Sources = append(out.Sources, src)
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}
