package mqtt

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// The fields of mosquitto-go-auth's requests (backends/http.go).
var (
	goAuthUser      = with(fUsername, fPassword, fClientID)
	goAuthSuperuser = with(fUsername)
	goAuthACL       = with(fUsername, fClientID, fTopic, fAcc)
)

// serveGoAuth serves mosquitto-go-auth's HTTP backend: POST (or GET, PUT)
// of a JSON or form body to /user, /superuser and /acl under GoAuthPrefix,
// answered as Config.ResponseMode says.
func (a *Adapter) serveGoAuth(ctx *fasthttp.RequestCtx) {
	ep := epOther
	switch string(ctx.Path()[len(GoAuthPrefix):]) {
	case "user":
		ep = epUser
	case "superuser":
		ep = epSuperuser
	case "acl":
		ep = epACL
	}
	if ep == epOther {
		a.observe(ep, denyBadRequest, "", "", "")
		a.writeGoAuth(ctx, fasthttp.StatusNotFound, "no such endpoint: use user, superuser or acl")
		return
	}
	if !ctx.IsPost() && !ctx.IsGet() && !ctx.IsPut() {
		a.observe(ep, denyBadRequest, "", "", "")
		a.writeGoAuth(ctx, fasthttp.StatusMethodNotAllowed, "use POST, GET or PUT")
		return
	}
	var d decision
	var r request
	var err error
	switch ep {
	case epUser:
		if r, err = readRequest(ctx, goAuthUser); err == nil {
			d = a.authenticate(r[fUsername], r[fPassword], r[fClientID], false)
		}
	case epSuperuser:
		if r, err = readRequest(ctx, goAuthSuperuser); err == nil {
			d = a.superuserOf(r[fUsername])
		}
	case epACL:
		if r, err = readRequest(ctx, goAuthACL); err == nil {
			if acc, ok := parseAcc(r[fAcc]); ok {
				d = a.authorize(r[fUsername], r[fClientID], r[fTopic], acc)
			} else {
				d = denyBadRequest
			}
		}
	}
	if err != nil {
		d = denyBadRequest
	}
	a.observe(ep, d, r[fUsername], r[fClientID], r[fTopic])
	switch d.outcome {
	case allowed:
		a.writeGoAuth(ctx, fasthttp.StatusOK, "")
	case unavailable:
		a.writeGoAuth(ctx, fasthttp.StatusServiceUnavailable, d.reason)
	default:
		a.writeGoAuth(ctx, fasthttp.StatusForbidden, d.reason)
	}
}

// writeGoAuth answers in the configured response mode. status 200 allows,
// with "ok" in text mode and {"ok":true,"error":""} in json mode; any
// other status denies in every mode, whatever the body, so that a plugin
// configured with another response mode still denies. why becomes the
// text body, or the json error, of a denial.
func (a *Adapter) writeGoAuth(ctx *fasthttp.RequestCtx, status int, why string) {
	ctx.SetStatusCode(status)
	switch a.cfg.ResponseMode {
	case ResponseJSON:
		ctx.SetContentType("application/json")
		if status == fasthttp.StatusOK {
			ctx.SetBodyString(`{"ok":true,"error":""}`)
			return
		}
		msg, _ := json.Marshal(why)
		ctx.SetBodyString(`{"ok":false,"error":` + string(msg) + `}`)
	case ResponseText:
		ctx.SetContentType("text/plain; charset=utf-8")
		if status == fasthttp.StatusOK {
			ctx.SetBodyString("ok")
			return
		}
		ctx.SetBodyString(why)
	default:
		ctx.SetContentType("text/plain; charset=utf-8")
	}
}
