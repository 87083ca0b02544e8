package mqtt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/internal/strictjson"
)

// field is one parameter of the contracts' requests.
type field uint8

const (
	fUsername field = iota
	fPassword
	fClientID
	fTopic
	fAcc    // mosquitto-go-auth: a JSON number, or a form string
	fAction // EMQX
	numFields
)

// fieldNames are the parameters' names, in JSON bodies, forms and queries.
var fieldNames = [numFields]string{"username", "password", "clientid", "topic", "acc", "action"}

// fields is a set of fields.
type fields uint8

func with(fs ...field) fields {
	var s fields
	for _, f := range fs {
		s |= 1 << f
	}
	return s
}

func (s fields) has(f field) bool { return s&(1<<f) != 0 }

// request holds the parameters of one request, as sent.
type request [numFields]string

var errNoParams = errors.New("the request has no JSON body, form body or query parameters")

// readRequest reads the fields need from a request: from a JSON body
// (Content-Type application/json), a form body
// (application/x-www-form-urlencoded), or, for a GET without a body, the
// query string. Each field must be present once; other parameters are
// ignored.
func readRequest(ctx *fasthttp.RequestCtx, need fields) (request, error) {
	switch mediaType(ctx.Request.Header.ContentType()) {
	case "application/json":
		return parseJSON(ctx.PostBody(), need)
	case "application/x-www-form-urlencoded":
		return parseForm(ctx.PostBody(), need)
	case "":
		if ctx.IsGet() && len(ctx.PostBody()) == 0 {
			return parseArgs(ctx.QueryArgs(), need)
		}
	}
	return request{}, errNoParams
}

// mediaType returns the lower-case media type of a Content-Type value,
// without parameters.
func mediaType(ct []byte) string {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return string(bytes.ToLower(bytes.TrimSpace(ct)))
}

// parseJSON reads the fields need from a JSON object under strictjson's
// rules (valid UTF-8, no duplicate members): strings, but acc a number.
func parseJSON(body []byte, need fields) (request, error) {
	var doc strictjson.Doc
	if err := doc.Parse(body); err != nil {
		return request{}, err
	}
	root := doc.Root()
	if root.Kind() != strictjson.Object {
		return request{}, errors.New("the JSON body is not an object")
	}
	var r request
	for f := range numFields {
		if !need.has(f) {
			continue
		}
		v, ok := root.Get(fieldNames[f])
		if !ok {
			return request{}, fmt.Errorf("the JSON body has no %q", fieldNames[f])
		}
		if f == fAcc {
			if v.Kind() != strictjson.Number {
				return request{}, errors.New(`"acc" is not a JSON number`)
			}
			r[f] = string(v.Raw())
			continue
		}
		s, ok := v.Str()
		if !ok {
			return request{}, fmt.Errorf("%q is not a JSON string", fieldNames[f])
		}
		r[f] = s
	}
	return r, nil
}

// parseForm reads the fields need from a form body.
func parseForm(body []byte, need fields) (request, error) {
	var args fasthttp.Args
	args.ParseBytes(body)
	return parseArgs(&args, need)
}

// parseArgs reads the fields need from form or query arguments.
func parseArgs(args *fasthttp.Args, need fields) (request, error) {
	var r request
	for f := range numFields {
		if !need.has(f) {
			continue
		}
		vs := args.PeekMulti(fieldNames[f])
		switch len(vs) {
		case 0:
			return request{}, fmt.Errorf("the request has no %q", fieldNames[f])
		case 1:
			r[f] = string(vs[0])
		default:
			return request{}, fmt.Errorf("the request has %q more than once", fieldNames[f])
		}
	}
	return r, nil
}

// parseAcc reads mosquitto's acc: 1, 2, 4 or 8, written as plain digits.
func parseAcc(s string) (access, bool) {
	switch s {
	case "1":
		return accRead, true
	case "2":
		return accWrite, true
	case "4":
		return accSubscribe, true
	case "8":
		return accUnsubscribe, true
	}
	return 0, false
}
