package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestInteropExchangeAndRefresh: golang.org/x/oauth2 exchanges a code minted
// server-side (the authorize endpoint is a separate feature), with its
// default auth style detection, then refreshes through a TokenSource.
func TestInteropExchangeAndRefresh(t *testing.T) {
	s, _ := newTestService(t, nil)
	srv := httptest.NewServer(http.HandlerFunc(s.ServeToken))
	defer srv.Close()
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := &oauth2.Config{ClientID: "app", ClientSecret: "app-secret", RedirectURL: appRedirect,
			Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: style}}
		ctx := context.Background()
		tok, err := cfg.Exchange(ctx, mintCode(t, s, "app", appRedirect, "user-1", "read"))
		if err != nil {
			t.Fatalf("style %d: exchange: %v", style, err)
		}
		if tok.TokenType != "Bearer" || tok.RefreshToken == "" || !valid(s, tok.AccessToken) {
			t.Fatalf("style %d: token %+v", style, tok)
		}
		if tok.Extra("scope") != "read" {
			t.Fatalf("scope = %v", tok.Extra("scope"))
		}
		// An expired token makes the TokenSource refresh.
		tok.Expiry = time.Now().Add(-time.Minute)
		next, err := cfg.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatalf("style %d: refresh: %v", style, err)
		}
		if next.AccessToken == tok.AccessToken || next.RefreshToken == tok.RefreshToken || !valid(s, next.AccessToken) {
			t.Fatalf("style %d: refresh did not rotate: %+v", style, next)
		}
		if valid(s, tok.AccessToken) {
			t.Fatalf("style %d: the old access token survived the refresh", style)
		}
	}
	// A replayed code is an error the library reports as a RetrieveError.
	cfg := &oauth2.Config{ClientID: "app", ClientSecret: "app-secret", RedirectURL: appRedirect, Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}
	code := mintCode(t, s, "app", appRedirect, "user-1", "read")
	if _, err := cfg.Exchange(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	_, err := cfg.Exchange(context.Background(), code)
	re, ok := err.(*oauth2.RetrieveError)
	if !ok || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != 400 {
		t.Fatalf("replay: %v", err)
	}
}
