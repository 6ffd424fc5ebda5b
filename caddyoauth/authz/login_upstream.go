package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
)

// DefaultLoginTimeout bounds a login upstream's answer when UpstreamLogin
// gives no Timeout.
const DefaultLoginTimeout = 5 * time.Second

// UpstreamLogin authenticates people against the legacy system's login
// endpoint: it POSTs the username and password and takes a 2xx answer
// carrying a user ID in a JSON field as a successful login.
type UpstreamLogin struct {
	// URL receives the POST.
	URL string
	// Form posts application/x-www-form-urlencoded instead of JSON.
	Form bool
	// IDField names the JSON field of the answer holding the user ID.
	// Default: id.
	IDField string
	// Timeout bounds the whole exchange. Default: DefaultLoginTimeout.
	Timeout time.Duration
	// Client sends the request. Default: a client that follows no
	// redirects.
	Client *http.Client
	// Log receives warnings about the upstream.
	Log *zap.Logger
	// ClaimsFrom maps OpenID Connect claims to the JSON fields of the
	// answer they are read from (claims_from name=display_name). A field
	// missing or of the wrong type is left out. Default: none.
	ClaimsFrom map[string]string
}

// maxLoginAnswer caps what is read of the upstream's answer.
const maxLoginAnswer = 64 << 10

// Authenticate implements Authenticator. A 2xx answer with the ID field is
// a login; a 4xx, another 2xx or a 3xx is ErrBadCredentials; a timeout, a
// refused connection or a 5xx is a *LoginUnavailableError, since the
// upstream could not decide.
func (u *UpstreamLogin) Authenticate(ctx context.Context, username, password string) (string, error) {
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = DefaultLoginTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var body []byte
	ctype := "application/json"
	if u.Form {
		body = []byte(url.Values{"username": {username}, "password": {password}}.Encode())
		ctype = "application/x-www-form-urlencoded"
	} else {
		body, _ = json.Marshal(map[string]string{"username": username, "password": password})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.URL, bytes.NewReader(body))
	if err != nil {
		return "", &LoginUnavailableError{Reason: "bad login upstream URL"}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	client := u.Client
	if client == nil {
		client = noRedirectClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The url.Error text repeats the URL, which may hold credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v", timeout)
		}
		return "", &LoginUnavailableError{Reason: fmt.Sprintf("login upstream %s: %v", u.redacted(), err)}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxLoginAnswer))
	if err != nil {
		return "", &LoginUnavailableError{Reason: fmt.Sprintf("login upstream %s: reading the answer: %v", u.redacted(), err)}
	}
	switch {
	case resp.StatusCode >= 500:
		return "", &LoginUnavailableError{Reason: fmt.Sprintf("login upstream %s answered %d", u.redacted(), resp.StatusCode)}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", ErrBadCredentials
	}
	id, why := u.userID(answer)
	if why != "" {
		// The upstream's fault, not the person's: logged as such, never
		// with the answer, which may echo what was sent.
		u.warn("login upstream answered 2xx with an unusable user ID (" + why + "); treated as a failed login")
		return "", ErrBadCredentials
	}
	if len(u.ClaimsFrom) > 0 {
		setLoginClaims(ctx, u.claims(answer))
	}
	return id, nil
}

// claims reads the claims of ClaimsFrom from an answer whose user ID was
// read, so it is a JSON object with one ID field. A value of the wrong
// type for its claim is left out, and named in a warning (never with its
// value).
func (u *UpstreamLogin) claims(answer []byte) oidc.Claims {
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.UseNumber()
	out := oidc.Claims{}
	if dec.Decode(&fields) != nil {
		return out
	}
	for claim, field := range u.ClaimsFrom {
		v, ok := fields[field]
		if !ok || v == nil {
			continue
		}
		if n, isNum := v.(json.Number); isNum {
			i, err := n.Int64()
			if err != nil {
				u.warn("login upstream: field " + field + " is not a whole number; claim " + claim + " left out")
				continue
			}
			v = i
		}
		one := oidc.Claims{claim: v}
		if err := one.Check(); err != nil {
			u.warn("login upstream: field " + field + " does not fit claim " + claim + "; left out")
			continue
		}
		out[claim] = v
	}
	return out
}

// userID reads the user ID from a 2xx answer: the ID field of a JSON
// object, given once, as a string or number that CheckUserID accepts. why
// says what is wrong when there is none.
func (u *UpstreamLogin) userID(answer []byte) (id, why string) {
	field := u.IDField
	if field == "" {
		field = "id"
	}
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", "the answer is not a JSON object"
	}
	var val any
	found := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", "the answer is not valid JSON"
		}
		key, _ := t.(string)
		if key != field {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", "the answer is not valid JSON"
			}
			continue
		}
		// A second ID field could make two parsers see two users.
		if found {
			return "", "the ID field is given twice"
		}
		found = true
		if err := dec.Decode(&val); err != nil {
			return "", "the answer is not valid JSON"
		}
	}
	if _, err := dec.Token(); err != nil {
		return "", "the answer is not valid JSON"
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", "the answer has more after its JSON object"
	}
	switch v := val.(type) {
	case string:
		id = v
	case json.Number:
		id = v.String()
	case nil:
		if !found {
			return "", "the ID field is missing"
		}
		return "", "the ID field is null"
	default:
		return "", "the ID field is neither a string nor a number"
	}
	if err := CheckUserID(id); err != nil {
		return "", err.Error()
	}
	return id, ""
}

func (u *UpstreamLogin) warn(msg string) {
	if u.Log != nil {
		u.Log.Warn(msg, zap.String("upstream", u.redacted()))
	}
}

// redacted is the URL without a password, for messages.
func (u *UpstreamLogin) redacted() string {
	p, err := url.Parse(u.URL)
	if err != nil {
		return "(bad URL)"
	}
	p.RawQuery = ""
	return strings.TrimSuffix(p.Redacted(), "?")
}

var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
