package integration

import (
	"context"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestAuthorizeInteropXOAuth2: golang.org/x/oauth2, a common client
// library, runs the authorization code flow with S256 PKCE against the
// gateway, calls the API with its token, and refreshes it; a plain HTTP
// client with a cookie jar plays the person at the screens.
func TestAuthorizeInteropXOAuth2(t *testing.T) {
	g, up := startAuthorize(t, "")
	ctx := context.Background()
	endpoint := oauth2.Endpoint{AuthURL: g.URL + "/oauth/authorize", TokenURL: g.URL + "/oauth/token"}

	for _, tc := range []struct {
		name  string
		conf  *oauth2.Config
		scope string
	}{
		{"confidential, secret in Basic", &oauth2.Config{
			ClientID: "web", ClientSecret: "web-secret", RedirectURL: webCB, Scopes: []string{"read", "write"},
			Endpoint: withStyle(endpoint, oauth2.AuthStyleInHeader),
		}, "read write"},
		{"public, client_id in the body", &oauth2.Config{
			ClientID: "spa", RedirectURL: spaCB, Scopes: []string{"read"},
			Endpoint: withStyle(endpoint, oauth2.AuthStyleInParams),
		}, "read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			authURL := tc.conf.AuthCodeURL("interop-state", oauth2.S256ChallengeOption(verifier))
			b := newBrowser(t, g.URL)
			u, _ := url.Parse(authURL)
			back := b.approve(u.Query(), "alice", "alice-pw")
			if back.Query().Get("state") != "interop-state" {
				t.Fatalf("state = %q", back.Query().Get("state"))
			}

			tok, err := tc.conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.AccessToken == "" || tok.Type() != "Bearer" || tok.Extra("scope") != tc.scope {
				t.Fatalf("token: %+v scope=%v", tok, tok.Extra("scope"))
			}
			call := func(tok *oauth2.Token) {
				t.Helper()
				resp, err := tc.conf.Client(ctx, tok).Get(g.URL + "/api/reports")
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || up.Last().Get("X-User-Id") != "u-alice" {
					t.Fatalf("API call: %d, upstream X-User-ID %q", resp.StatusCode, up.Last().Get("X-User-Id"))
				}
			}
			call(tok)

			// A wrong verifier is refused as invalid_grant.
			back = b.approve(u.Query(), "alice", "alice-pw")
			_, err = tc.conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
			var re *oauth2.RetrieveError
			if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("Exchange with a wrong verifier: %v", err)
			}

			if tok.RefreshToken == "" {
				return // the public client has no refresh_token grant
			}
			expired := *tok
			expired.Expiry = time.Now().Add(-time.Minute)
			fresh, err := tc.conf.TokenSource(ctx, &expired).Token()
			if err != nil || fresh.AccessToken == tok.AccessToken || !strings.Contains(fresh.Extra("scope").(string), "read") {
				t.Fatalf("refresh: %v %+v", err, fresh)
			}
			call(fresh)
		})
	}
}

func withStyle(e oauth2.Endpoint, s oauth2.AuthStyle) oauth2.Endpoint {
	e.AuthStyle = s
	return e
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	r, ok := err.(*oauth2.RetrieveError)
	*re = r
	return ok
}
