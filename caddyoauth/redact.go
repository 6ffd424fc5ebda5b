package caddyoauth

import (
	"net/http"
	"net/url"
)

// secretRedirectParams are the query parameters of a redirect that carry
// a credential: the authorization code (RFC 6749 §4.1.2).
var secretRedirectParams = []string{"code"}

// redirectWriter notes the status an endpoint answers with.
type redirectWriter struct {
	http.ResponseWriter
	status int
}

func (w *redirectWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *redirectWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveRedacted runs an endpoint, then keeps an authorization code in a
// redirect's Location out of the access log. Caddy's access log records
// the response headers from the header map once the handler returns, and
// redacts only cookies and Authorization; a code logged there could be
// redeemed by whoever reads the logs before the client does. The answer is
// flushed first, so the client gets the real Location; only the map the
// log reads is changed afterwards.
func serveRedacted(serve func(http.ResponseWriter) error, w http.ResponseWriter) error {
	rw := &redirectWriter{ResponseWriter: w}
	err := serve(rw)
	if rw.status < 300 || rw.status > 399 {
		return err
	}
	loc := w.Header().Get("Location")
	u, perr := url.Parse(loc)
	if loc == "" || perr != nil {
		return err
	}
	q := u.Query()
	redact := false
	for _, p := range secretRedirectParams {
		if q.Has(p) {
			q.Set(p, "REDACTED")
			redact = true
		}
	}
	if !redact {
		return err
	}
	if ferr := http.NewResponseController(w).Flush(); ferr != nil {
		return err // headers not known to be sent: leave them as they are
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	return err
}
