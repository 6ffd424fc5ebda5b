package oidc

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Values of the prompt parameter (OIDC Core §3.1.2.1).
const (
	PromptNone          = "none"
	PromptLogin         = "login"
	PromptConsent       = "consent"
	PromptSelectAccount = "select_account"
)

// PromptValues are the prompt values the gateway takes, for discovery.
var PromptValues = []string{PromptNone, PromptLogin, PromptConsent, PromptSelectAccount}

// Response modes (OAuth 2.0 Multiple Response Types §2.1, Form Post
// Response Mode §2).
const (
	ResponseModeQuery    = "query"
	ResponseModeFormPost = "form_post"
)

// ResponseModes are the response modes the gateway takes.
var ResponseModes = []string{ResponseModeQuery, ResponseModeFormPost}

// Bounds of what an authentication request stores with its pending
// request.
const (
	MaxNonce     = 1 << 10
	MaxLoginHint = 256
	// MaxClaimsRequested bounds the claims a claims parameter names.
	MaxClaimsRequested = 64
)

// Request is what an authorization request asks beyond OAuth 2.0, kept
// with the pending request. Only ResponseMode applies to a request
// without the openid scope.
type Request struct {
	ResponseMode string `json:"rm,omitempty"`
	// OpenID: the scope holds openid; the fields below apply.
	OpenID bool     `json:"oid,omitempty"`
	Nonce  string   `json:"n,omitempty"`
	Prompt []string `json:"p,omitempty"`
	// MaxAge is max_age in seconds, or the client's default_max_age; -1:
	// none.
	MaxAge    int64  `json:"ma"`
	LoginHint string `json:"lh,omitempty"`
	// HintSubject is the sub of a valid id_token_hint.
	HintSubject string         `json:"hs,omitempty"`
	Claims      *ClaimsRequest `json:"cl,omitempty"`
	// Started is when the request arrived, in unix nanoseconds.
	Started int64 `json:"t,omitempty"`
}

// ClaimsRequest is the claims request parameter (OIDC Core §5.5): the
// claims asked for in the UserInfo answer and in the ID token. Requested
// values are not kept: the gateway has one value per claim.
type ClaimsRequest struct {
	UserInfo map[string]ClaimSpec `json:"userinfo,omitempty"`
	IDToken  map[string]ClaimSpec `json:"id_token,omitempty"`
}

// ClaimSpec is one requested claim.
type ClaimSpec struct {
	Essential bool `json:"essential,omitempty"`
}

// Error is an authentication request error to send back to the client.
type Error struct{ Code, Description string }

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalid(desc string) *Error { return &Error{Code: "invalid_request", Description: desc} }

// ParseRequest reads the parameters of an authorization request that
// OpenID Connect adds, for a request whose granted scope holds openid
// when openID is set. defaultMaxAge is the client's default_max_age in
// seconds (-1: none). id_token_hint is left to the caller, which can
// verify it. A nil Request means nothing beyond OAuth 2.0 was asked.
func ParseRequest(q url.Values, openID bool, defaultMaxAge int64, now time.Time) (*Request, *Error) {
	r := &Request{MaxAge: -1, Started: now.UnixNano()}
	switch rm := q.Get("response_mode"); rm {
	case "", ResponseModeQuery, ResponseModeFormPost:
		r.ResponseMode = rm
	default:
		return nil, invalid("response_mode must be query or form_post")
	}
	if !openID {
		if r.ResponseMode == "" {
			return nil, nil
		}
		return r, nil
	}
	// OIDC Core §6: request objects are not supported.
	if q.Has("request") {
		return r, &Error{Code: "request_not_supported", Description: "request objects are not supported"}
	}
	if q.Has("request_uri") {
		return r, &Error{Code: "request_uri_not_supported", Description: "request_uri is not supported"}
	}
	if q.Has("registration") {
		return r, &Error{Code: "registration_not_supported", Description: "the registration parameter is not supported"}
	}
	r.OpenID = true
	if r.Nonce = q.Get("nonce"); len(r.Nonce) > MaxNonce {
		return r, invalid("nonce is longer than 1024 bytes")
	}
	if p := q.Get("prompt"); p != "" {
		for v := range strings.FieldsSeq(p) {
			if !slices.Contains(PromptValues, v) {
				return r, invalid("prompt value is not supported (none, login, consent, select_account)")
			}
			if !slices.Contains(r.Prompt, v) {
				r.Prompt = append(r.Prompt, v)
			}
		}
		if slices.Contains(r.Prompt, PromptNone) && len(r.Prompt) > 1 {
			return r, invalid("prompt=none goes with no other prompt value")
		}
	}
	r.MaxAge = defaultMaxAge
	if q.Has("max_age") {
		n, err := strconv.ParseInt(q.Get("max_age"), 10, 64)
		if err != nil || n < 0 || n > 1<<32 {
			return r, invalid("max_age must be a non-negative number of seconds")
		}
		r.MaxAge = n
	}
	if r.LoginHint = q.Get("login_hint"); len(r.LoginHint) > MaxLoginHint {
		r.LoginHint = "" // only a convenience: dropped, not refused
	}
	if c := q.Get("claims"); c != "" {
		cr, err := ParseClaimsRequest(c)
		if err != nil {
			return r, err
		}
		r.Claims = cr
	}
	return r, nil
}

// ParseClaimsRequest reads the claims request parameter: a JSON object
// whose userinfo and id_token members map claim names to null or to an
// object (OIDC Core §5.5). Other members, and essential's siblings, are
// ignored.
func ParseClaimsRequest(s string) (*ClaimsRequest, *Error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, invalid("claims is not a JSON object")
	}
	out := &ClaimsRequest{}
	n := 0
	for member, dst := range map[string]*map[string]ClaimSpec{"userinfo": &out.UserInfo, "id_token": &out.IDToken} {
		b, ok := raw[member]
		if !ok || string(b) == "null" {
			continue
		}
		var claims map[string]json.RawMessage
		if err := json.Unmarshal(b, &claims); err != nil {
			return nil, invalid("claims." + member + " is not a JSON object")
		}
		*dst = map[string]ClaimSpec{}
		for name, spec := range claims {
			if n++; n > MaxClaimsRequested {
				return nil, invalid("claims names too many claims")
			}
			var cs ClaimSpec
			if string(spec) != "null" {
				var obj map[string]json.RawMessage
				if err := json.Unmarshal(spec, &obj); err != nil {
					return nil, invalid("claims." + member + ": a claim's request must be null or an object")
				}
				if e, ok := obj["essential"]; ok && json.Unmarshal(e, &cs.Essential) != nil {
					return nil, invalid("claims." + member + ": essential must be true or false")
				}
			}
			(*dst)[name] = cs
		}
	}
	return out, nil
}

// Has reports whether the request carries a prompt value.
func (r *Request) Has(prompt string) bool { return r != nil && slices.Contains(r.Prompt, prompt) }

// AuthAfter is the earliest sign-in, in unix nanoseconds, that answers the
// request: with prompt=login (or select_account, which the gateway
// answers with its sign-in form) the person signs in anew; with max_age a
// sign-in older than that many seconds is not enough. 0: any sign-in.
func (r *Request) AuthAfter() int64 {
	if r == nil || !r.OpenID {
		return 0
	}
	var after int64
	if r.Has(PromptLogin) || r.Has(PromptSelectAccount) {
		after = r.Started
	}
	if r.MaxAge >= 0 {
		after = max(after, r.Started-r.MaxAge*int64(time.Second))
	}
	return after
}

// Fresh reports whether a sign-in at authTime (unix nanoseconds; 0 for one
// of unknown time) answers the request.
func (r *Request) Fresh(authTime int64) bool {
	after := r.AuthAfter()
	return after == 0 || (authTime != 0 && authTime >= after)
}

// ForceConsent reports whether the person must be asked even when they
// approved before (prompt=consent).
func (r *Request) ForceConsent() bool { return r.Has(PromptConsent) }

// NoInteraction reports whether the request forbids showing any page
// (prompt=none).
func (r *Request) NoInteraction() bool { return r.Has(PromptNone) }

// FormPost reports whether the response goes back in an auto-submitted
// form (response_mode=form_post).
func (r *Request) FormPost() bool { return r != nil && r.ResponseMode == ResponseModeFormPost }

// WantsAuthTime reports whether the ID token must carry auth_time: asked
// for with max_age or as an essential claim (OIDC Core §2, §5.5.1.1).
func (r *Request) WantsAuthTime() bool {
	if r == nil {
		return false
	}
	if r.MaxAge >= 0 {
		return true
	}
	if r.Claims != nil {
		if _, ok := r.Claims.IDToken["auth_time"]; ok {
			return true
		}
	}
	return false
}
