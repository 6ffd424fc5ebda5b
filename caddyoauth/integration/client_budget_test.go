package integration

import (
	"net/url"
	"testing"
)

// TestPublicClientBudgetNotSpentByStrangers: a public client proves
// nothing but its client_id, so requests that fail spend only their
// addresses' budgets. Two addresses sending garbage with client_id=spa
// leave the app's users able to exchange their codes; the client's budget
// is spent by grants that succeed, and once it is spent the next request
// is refused.
func TestPublicClientBudgetNotSpentByStrangers(t *testing.T) {
	g, _ := startAuthorize(t, `rate_limit {
		token 3/h
	}`)
	tokenURL := g.URL + "/oauth/token"
	garbage := url.Values{"grant_type": {"refresh_token"}, "client_id": {"spa"}, "refresh_token": {"not-a-token"}}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		from := fromAddr(ip)
		for i := range 3 {
			if r := postFrom(t, from, tokenURL, "", "", garbage); r.Status != 400 {
				t.Fatalf("garbage %d from %s: %d %s, want 400", i+1, ip, r.Status, r.Body)
			}
		}
		assertTooMany(t, "a fourth request from "+ip, postFrom(t, from, tokenURL, "", "", garbage))
	}

	// Alice signs in to the app from .3 and gets four codes.
	b := browserFrom(t, g.URL, "127.0.0.3")
	type code struct{ code, verifier string }
	var codes []code
	for i, seed := range []string{"one", "two", "three", "four"} {
		verifier, challenge := pkce(seed)
		params := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "state": {seed},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		u := b.approve(params, "alice", "alice-pw")
		if u.Query().Get("code") == "" {
			t.Fatalf("code %d: %s", i+1, u)
		}
		codes = append(codes, code{u.Query().Get("code"), verifier})
	}
	redeemFrom := func(ip string, c code) int {
		r := postFrom(t, fromAddr(ip), tokenURL, "", "", url.Values{"grant_type": {"authorization_code"},
			"client_id": {"spa"}, "code": {c.code}, "code_verifier": {c.verifier}})
		if r.Status == 429 {
			assertTooMany(t, "the spent client", r)
		}
		return r.Status
	}
	// The garbage spent nothing of spa's: three exchanges succeed, each
	// from an address of its own.
	for i, ip := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		if s := redeemFrom(ip, codes[i]); s != 200 {
			t.Fatalf("exchange %d from %s: %d, want 200 (strangers spent the app's budget)", i+1, ip, s)
		}
	}
	// Those three spent it: the fourth is refused.
	if s := redeemFrom("127.0.0.6", codes[3]); s != 429 {
		t.Fatalf("fourth exchange: %d, want 429", s)
	}
}
