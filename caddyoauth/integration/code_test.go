package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// plantCodes writes authorization codes for client conf into the stopped
// gateway's file store, as the authorize endpoint would have issued them:
// under the digest of the code, never the code itself.
func plantCodes(t *testing.T, g *gt.Gateway, n int, redirectURI string) []string {
	t.Helper()
	db, err := filestore.Open(filepath.Join(g.Params.DataDir, "tokens.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var codes []string
	var writes []store.Write
	now := time.Now()
	for i := 0; i < n; i++ {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		code := base64.RawURLEncoding.EncodeToString(b)
		rec, _ := json.Marshal(map[string]any{
			"cid": "conf", "uid": "user-42", "scp": "read", "ru": redirectURI,
			"fam": "fam-" + code[:8], "iat": now.UnixNano(), "exp": now.Add(10 * time.Minute).UnixNano(),
		})
		writes = append(writes, store.Write{Key: "code:" + digest(code), Value: rec})
		codes = append(codes, code)
	}
	err = db.WriteBatch(context.Background(), writes)
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

// TestCodeRedemptionOverHTTP redeems authorization codes through the real
// gateway: the right client and redirect_uri get tokens once, and of 16
// concurrent redemptions of one code exactly one wins, round after round.
func TestCodeRedemptionOverHTTP(t *testing.T) {
	up := gt.StartUpstream(t)
	g := protectGateway(t, up)
	const cb = "https://a.example.com/cb"
	const rounds, workers = 15, 16
	g.Stop()
	codes := plantCodes(t, g, rounds+3, cb)
	g.Restart()
	tokenURL := g.URL + "/oauth/token"
	redeem := func(code, uri string) *gt.Response {
		return gt.PostForm(t, tokenURL, "conf", "conf-secret", url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {uri}})
	}

	t.Run("redirect_uri must match exactly", func(t *testing.T) {
		code := codes[rounds]
		for _, uri := range []string{"https://evil-a.example.com/cb", "https://a.example.com/cb/", ""} {
			wantOAuthError(t, redeem(code, uri), 400, "invalid_grant")
		}
		wantOAuthError(t, gt.PostForm(t, tokenURL, "reader", "reader-secret", url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb}}), 400, "unauthorized_client")
		r := wantToken(t, redeem(code, cb))
		if r.Str("refresh_token") == "" || r.Str("scope") != "read" {
			t.Fatalf("answer %s", r.Body)
		}
		if m := me(t, g, r.Str("access_token")); m.Str("user_id") != "user-42" || m.Str("client_id") != "conf" {
			t.Fatalf("me: %s", m.Body)
		}
		// A replay fails and revokes the tokens the code gave.
		wantOAuthError(t, redeem(code, cb), 400, "invalid_grant")
		if m := me(t, g, r.Str("access_token")); m.Status != 401 {
			t.Fatalf("tokens of a replayed code still work: %d", m.Status)
		}
	})
	t.Run("wrong client secret does not burn the code", func(t *testing.T) {
		code := codes[rounds+1]
		wantOAuthError(t, gt.PostForm(t, tokenURL, "conf", "nope", url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb}}), 401, "invalid_client")
		wantToken(t, redeem(code, cb))
	})
	t.Run("concurrent redemptions", func(t *testing.T) {
		for round := 0; round < rounds; round++ {
			var mu sync.Mutex
			statuses := map[int]int{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(url.Values{
						"grant_type": {"authorization_code"}, "code": {codes[round]}, "redirect_uri": {cb}}.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth("conf", "conf-secret")
					resp, err := gt.HTTPClient.Do(req)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						statuses[-1]++
						return
					}
					resp.Body.Close()
					statuses[resp.StatusCode]++
				}()
			}
			close(start)
			wg.Wait()
			if statuses[200] != 1 || statuses[400] != workers-1 {
				t.Fatalf("round %d: answers %v, want one 200 and %d 400", round, statuses, workers-1)
			}
		}
	})
}
