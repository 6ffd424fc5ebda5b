package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func hookService(t *testing.T) *Service {
	t.Helper()
	c := &Client{ID: "app", Grants: []string{GrantPassword, GrantClientCredentials}, Scopes: []string{"read"}}
	c.SetSecret("app-secret")
	h, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	users := StaticUsers{"alice": {Username: "alice", PasswordHash: h, UserID: "u1"}}
	return New(Config{AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute},
		memStore(t), StaticClients{"app": c}, users, nil)
}

func TestHooksLockoutRefusesWithoutCheckingThePassword(t *testing.T) {
	s := hookService(t)
	var results []bool
	locked := false
	s.SetHooks(Hooks{
		LoginLocked: func(_ *http.Request, _, username string) time.Duration {
			if locked {
				return 30 * time.Second
			}
			return 0
		},
		LoginResult: func(_ *http.Request, method, _ string, ok bool) {
			if method != LoginPasswordGrant {
				t.Errorf("method %q", method)
			}
			results = append(results, ok)
		},
	})
	app := basic("app", "app-secret")
	if r := post(t, s, form("grant_type", "password", "username", "alice", "password", "wrong"), app); r.status != 400 {
		t.Fatalf("wrong password: %d %s", r.status, r.body)
	}
	locked = true
	r := post(t, s, form("grant_type", "password", "username", "alice", "password", "right"), app)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "30" || r.str("error") != "temporarily_unavailable" {
		t.Fatalf("locked login: %d Retry-After=%q %s; want 429, 30, temporarily_unavailable", r.status, r.header.Get("Retry-After"), r.body)
	}
	if len(results) != 1 || results[0] {
		t.Fatalf("login results = %v, want one failure (the locked attempt is not checked)", results)
	}
	locked = false
	if r := post(t, s, form("grant_type", "password", "username", "alice", "password", "right"), app); r.status != 200 {
		t.Fatalf("unlocked login: %d %s", r.status, r.body)
	}
	if len(results) != 2 || !results[1] {
		t.Fatalf("login results = %v, want a success last", results)
	}
}

func TestHooksClientLimitAndCounters(t *testing.T) {
	s := hookService(t)
	allow := true
	var asked []string
	var issued, refused []string
	s.SetHooks(Hooks{
		AllowClient: func(_ context.Context, endpoint, id string) (time.Duration, bool) {
			if endpoint != EndpointToken {
				t.Errorf("endpoint %q", endpoint)
			}
			asked = append(asked, id)
			return 2 * time.Second, allow
		},
		TokenIssued:  func(g, c string) { issued = append(issued, g+"/"+c) },
		TokenRefused: func(g, c, code string) { refused = append(refused, g+"/"+c+"/"+code) },
	})
	app := basic("app", "app-secret")
	if r := post(t, s, form("grant_type", "client_credentials"), app); r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	allow = false
	r := post(t, s, form("grant_type", "client_credentials"), app)
	if r.status != 429 || r.header.Get("Retry-After") != "2" || r.str("error") != "temporarily_unavailable" {
		t.Fatalf("limited client: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// A request whose client does not authenticate is never counted
	// against the client.
	post(t, s, form("grant_type", "client_credentials"), basic("app", "bad"))
	if len(asked) != 2 {
		t.Fatalf("AllowClient asked %d times (%v), want 2: only authenticated requests count", len(asked), asked)
	}
	if strings.Join(issued, ",") != "client_credentials/app" {
		t.Fatalf("issued = %v", issued)
	}
	want := "client_credentials/app/temporarily_unavailable,client_credentials//invalid_client"
	if strings.Join(refused, ",") != want {
		t.Fatalf("refused = %v, want %s", refused, want)
	}
}

// TestLoginForForm: Service.Login, which a login form calls, applies the
// same lockout hooks with its own method, and answers a locked attempt
// with a 429 *Error without checking the password.
func TestLoginForForm(t *testing.T) {
	s := hookService(t)
	var seen []string
	locked := false
	s.SetHooks(Hooks{
		LoginLocked: func(_ *http.Request, method, _ string) time.Duration {
			seen = append(seen, "check:"+method)
			if locked {
				return time.Minute
			}
			return 0
		},
		LoginResult: func(_ *http.Request, method, _ string, ok bool) {
			seen = append(seen, method+":"+map[bool]string{true: "ok", false: "fail"}[ok])
		},
	})
	r := httptest.NewRequest(http.MethodPost, "/oauth/login", nil)
	if _, err := s.Login(r, LoginForm, "app", "alice", "wrong"); err != ErrBadCredentials {
		t.Fatalf("wrong password: %v, want ErrBadCredentials", err)
	}
	if uid, err := s.Login(r, LoginForm, "app", "alice", "right"); err != nil || uid != "u1" {
		t.Fatalf("right password: %q, %v", uid, err)
	}
	locked = true
	_, err := s.Login(r, LoginForm, "app", "alice", "right")
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || e.RetryAfter != time.Minute {
		t.Fatalf("locked: %v, want a 429 *Error with RetryAfter 1m", err)
	}
	want := "check:form form:fail check:form form:ok check:form"
	if got := strings.Join(seen, " "); got != want {
		t.Fatalf("hooks saw %q, want %q", got, want)
	}
}
