package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/valyala/fasthttp"
)

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Code    string `json:"code"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers status with an error body; code is e.g. "BAD_REQUEST".
func writeError(ctx *fasthttp.RequestCtx, status int, code, message string) {
	writeJSON(ctx, status, errorBody{Code: code, Error: strings.ToLower(code), Message: message})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded; this is a programming error.
		panic(fmt.Sprintf("httpapi: encode response: %v", err))
	}
	ctx.SetBody(append(b, '\n'))
}

// decodeBody decodes the JSON request body into v strictly: one object, no
// unknown fields, no trailing data, at most limit bytes. The error message
// is meant for the client.
func decodeBody(ctx *fasthttp.RequestCtx, limit int, v any) error {
	body := ctx.PostBody()
	if len(body) > limit {
		return fmt.Errorf("request body is larger than %d bytes", limit)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("request body is empty (expected a JSON object)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: unexpected data after the object")
	}
	return nil
}

func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Errorf("invalid JSON: field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Errorf("invalid JSON: expected %s, got %s", typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: the body ends early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("invalid JSON: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fmt.Errorf("invalid JSON: %v", err)
}
