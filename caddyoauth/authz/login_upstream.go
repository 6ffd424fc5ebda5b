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
	id, ok := u.userID(answer)
	if !ok {
		u.warn("login upstream answered 2xx without a usable user ID; treated as a failed login")
		return "", ErrBadCredentials
	}
	return id, nil
}

func (u *UpstreamLogin) userID(answer []byte) (string, bool) {
	field := u.IDField
	if field == "" {
		field = "id"
	}
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return "", false
	}
	var id string
	switch v := obj[field].(type) {
	case string:
		id = v
	case json.Number:
		id = v.String()
	default:
		return "", false
	}
	if id == "" || CheckUserID(id) != nil {
		return "", false
	}
	return id, true
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
