package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

// adminContext returns the context of one admin call: bounded by
// adminTimeout, and naming the admin key's actor for the audit trail.
func (s *Server) adminContext() (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	return verify.WithActor(c, s.opts.Manager.AdminActor()), cancel
}

// adminAuthMetrics counts admin calls refused for want of the admin key.
// They are not audit events (no actor is known, and a flood of them must
// not fill the audit log); a rising count of wrong keys is a brute-force
// attempt to alert on.
type adminAuthMetrics struct {
	missing, wrong prometheus.Counter
}

func newAdminAuthMetrics(reg prometheus.Registerer) (adminAuthMetrics, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "http",
		Name:      "admin_auth_failures_total",
		Help:      "Admin API calls refused 401, by reason: missing (no X-Admin-Key) or wrong (a key that is not the admin key).",
	}, []string{"reason"})
	if reg != nil {
		if err := reg.Register(v); err != nil {
			return adminAuthMetrics{}, err
		}
	}
	return adminAuthMetrics{missing: v.WithLabelValues("missing"), wrong: v.WithLabelValues("wrong")}, nil
}

// refused counts one refused call; presented tells whether a key was sent.
func (m adminAuthMetrics) refused(presented bool) {
	if presented {
		m.wrong.Inc()
	} else {
		m.missing.Inc()
	}
}

// auditEntryBody is an audit entry as the API shows it.
type auditEntryBody struct {
	Time    time.Time `json:"time"`
	Seq     uint64    `json:"seq"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// auditPage is the answer of GET /v1/admin/audit.
type auditPage struct {
	Entries    []auditEntryBody `json:"entries"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// handleAudit serves GET /v1/admin/audit.
func (s *Server) handleAudit(ctx *fasthttp.RequestCtx) {
	if !s.isAdmin(ctx) || !allowMethod(ctx, fasthttp.MethodGet) {
		return
	}
	q, err := auditQuery(ctx.QueryArgs())
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	entries, next, err := s.opts.Manager.AuditLog(q)
	if err != nil {
		s.answerError(ctx, err)
		return
	}
	out := auditPage{Entries: make([]auditEntryBody, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, auditEntryBody{
			Time: e.Time.UTC(), Seq: e.Seq, Actor: e.Actor, Action: e.Action, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail,
		})
	}
	if next != nil {
		out.NextCursor = base64.RawURLEncoding.EncodeToString(next.AppendBinary(nil))
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// auditQuery reads the query of GET /v1/admin/audit: since, until (RFC
// 3339 or Unix seconds), actor, action, target (exact), order (newest, the
// default, or oldest), limit (1 to 1000, default 100) and cursor (the
// next_cursor of the previous page, with the same other parameters). Each
// may appear once; any other parameter is an error.
func auditQuery(args *fasthttp.Args) (keystore.AuditQuery, error) {
	var q keystore.AuditQuery
	var problems []string
	seen := map[string]bool{}
	args.VisitAll(func(k, v []byte) {
		name, val := string(k), string(v)
		if seen[name] {
			problems = append(problems, fmt.Sprintf("parameter %.32q appears twice", name))
			return
		}
		seen[name] = true
		switch name {
		case "since", "until":
			t, err := parseQueryTime(val)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s %.64q is not an RFC 3339 time or a number of Unix seconds", name, val))
			} else if name == "since" {
				q.Since = t
			} else {
				q.Until = t
			}
		case "actor":
			q.Actor = val
		case "action":
			q.Action = val
		case "target":
			q.Target = val
		case "order":
			switch val {
			case "newest":
			case "oldest":
				q.OldestFirst = true
			default:
				problems = append(problems, fmt.Sprintf("order %.32q is not newest or oldest", val))
			}
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > keystore.MaxAuditPage {
				problems = append(problems, fmt.Sprintf("limit %.32q is not a number from 1 to %d", val, keystore.MaxAuditPage))
			}
			q.Limit = n
		case "cursor":
			b, err := base64.RawURLEncoding.DecodeString(val)
			var pos keystore.AuditPos
			if err == nil {
				pos, err = keystore.ParseAuditPos(b)
			}
			if err != nil {
				problems = append(problems, "cursor is not a next_cursor this API returned")
			} else {
				q.After = &pos
			}
		default:
			problems = append(problems, fmt.Sprintf("unknown parameter %.32q (use since, until, actor, action, target, order, limit, cursor)", name))
		}
	})
	if len(problems) > 0 {
		return keystore.AuditQuery{}, errors.New(strings.Join(problems, "; "))
	}
	return q, nil
}

// parseQueryTime reads an RFC 3339 time or a whole number of Unix seconds.
func parseQueryTime(s string) (time.Time, error) {
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		if sec < 0 || sec > 253402300799 {
			return time.Time{}, errors.New("out of range")
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Parse(time.RFC3339, s)
}

// auditReload records a policy reload asked through the API, which ended
// with st and err. The reload is done by then: the entry is synced right
// after it, so a crash in between loses the entry of a reload whose effect
// (the policy in memory) the crash ends too.
func (s *Server) auditReload(st PolicyStatus, err error) {
	c, cancel := s.adminContext()
	defer cancel()
	outcome, detail := verify.ReloadOutcome(err), "unchanged"
	switch {
	case errors.Is(err, ErrNoPolicyFile):
		outcome, detail = verify.OutcomeConflict, "no policy file is configured"
	case err != nil:
		detail = "refused; the policy in force is unchanged"
	case st.Changed:
		detail = "changed"
	}
	if st.Policy != nil && err == nil {
		detail += " mode=" + st.Policy.Mode().String()
	}
	if err := s.opts.Manager.Audit(c, verify.ActionPolicyReload, st.File, outcome, detail); err != nil {
		s.opts.Logger.Error("httpapi: cannot write the audit entry of a policy reload", "err", err)
	}
}
