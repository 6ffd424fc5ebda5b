package authz

import (
	"net/url"
	"testing"
	"time"
)

// TestClientSinceRefusesEarlierGrants: once a client holds its client_id
// only since a later time (it was removed and put back), the tokens issued
// before are refused by validation, refresh and introspection alike, while
// those issued after work.
func TestClientSinceRefusesEarlierGrants(t *testing.T) {
	s, cs := newTestService(t, nil)
	oldAccess, oldRefresh := aliceTokens(t, s)
	cs["app"].Since = time.Now()
	newAccess, newRefresh := aliceTokens(t, s)

	if valid(s, oldAccess) {
		t.Fatal("an access token from before the client's Since is still valid")
	}
	wantInactive(t, introspect(t, s, "rs", url.Values{"token": {oldAccess}}))
	wantInactive(t, introspect(t, s, "rs", url.Values{"token": {oldRefresh}}))
	refreshGrant(t, s, oldRefresh, "", as("app")).wantError(t, 400, "invalid_grant")

	if !valid(s, newAccess) {
		t.Fatal("an access token from after the client's Since is refused")
	}
	if r := introspect(t, s, "rs", url.Values{"token": {newAccess}}); r.json["active"] != true {
		t.Fatalf("introspecting a token from after Since: %s", r.body)
	}
	refreshGrant(t, s, newRefresh, "", as("app")).wantToken(t)
}
