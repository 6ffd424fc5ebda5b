package dpop

import (
	"errors"
	"net/http"
	"strings"
)

// RFC 9449 error codes.
const (
	// CodeInvalidProof: the proof is missing, malformed or fails a check.
	CodeInvalidProof = "invalid_dpop_proof"
	// CodeUseNonce: the proof lacks the server's current nonce; the error
	// carries it for the DPoP-Nonce response header.
	CodeUseNonce = "use_dpop_nonce"
	// CodeInvalidToken: at a protected resource, the proof's key is not the
	// one the access token is bound to.
	CodeInvalidToken = "invalid_token"
)

// Error is a refused proof.
type Error struct {
	// Code is one of the Code constants.
	Code string
	// Description says which check failed; it holds no value from the
	// request, so it is safe in responses and logs.
	Description string
	// Nonce, with CodeUseNonce, is the nonce to send in DPoP-Nonce.
	Nonce string
}

func (e *Error) Error() string { return "dpop: " + e.Code + ": " + e.Description }

// HTTPStatus is the status of the response refusing the request: 401 at a
// protected resource (with a WWW-Authenticate challenge), 400 at the token
// endpoint (with a JSON error body).
func (e *Error) HTTPStatus(atResource bool) int {
	if atResource {
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest
}

func invalidProof(description string) *Error {
	return &Error{Code: CodeInvalidProof, Description: description}
}

// Challenge returns the value of the WWW-Authenticate header a protected
// resource answers err with (RFC 9449 §7.1): the error code and
// description when err is an *Error, and in every case algs, the
// algorithms accepted in proofs.
func (v *Verifier) Challenge(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		e = nil
	}
	return Challenge(e, v.names)
}

// Challenge builds a DPoP WWW-Authenticate value for e (nil: none, as when
// a request carried no credentials) advertising algs.
func Challenge(e *Error, algs []string) string {
	var b strings.Builder
	b.WriteString(Scheme)
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quoteEscape(value))
		b.WriteString(`"`)
		sep = ", "
	}
	if e != nil {
		param("error", e.Code)
		if e.Description != "" {
			param("error_description", e.Description)
		}
	}
	if len(algs) > 0 {
		param("algs", strings.Join(algs, " "))
	}
	return b.String()
}

// quoteEscape makes s fit an RFC 9110 quoted-string.
func quoteEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t' || c >= 0x20 && c != 0x7f:
			b.WriteByte(c)
		}
	}
	return b.String()
}
