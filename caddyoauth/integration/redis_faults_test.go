package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// loadResult is one protected call made by a load goroutine.
type loadResult struct {
	gateway    int
	phase      int32
	status     int
	retried    bool
	err        error
	start, end time.Time
}

// load calls /api on every gateway with token from two goroutines per
// gateway until stopped, tagging each call with the phase current when it
// was sent.
type load struct {
	*gt.Load[loadResult]
}

func startLoad(gws []*gt.Gateway, token string) *load {
	return startLoadWith(gt.HTTPClient, gws, token, false)
}

// startLoadWith is startLoad with its own HTTP client; with retry, a call
// whose connection broke before any answer is sent once more.
func startLoadWith(client *http.Client, gws []*gt.Gateway, token string, retry bool) *load {
	l := &load{gt.NewLoad[loadResult]()}
	for i, g := range gws {
		for range 2 {
			l.Go(func() {
				res := loadResult{gateway: i, phase: l.Phase.Load(), start: time.Now()}
				req, _ := http.NewRequest(http.MethodGet, g.URL+"/api", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil && retry {
					res.retried = true
					resp, err = client.Do(req)
				}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					res.status = resp.StatusCode
				}
				res.err, res.end = err, time.Now()
				l.Record(res)
			})
		}
	}
	return l
}

// count is how many calls to gateway in phase answered status so far.
func (l *load) count(gateway int, phase int32, status int) int {
	return l.Count(func(r loadResult) bool { return r.gateway == gateway && r.phase == phase && r.status == status })
}

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

// goroutines is the gateway process's goroutine count, from the admin
// endpoint's pprof handler.
func goroutines(t testing.TB, g *gt.Gateway) int {
	t.Helper()
	r := gt.Get(t, g.AdminURL+"/debug/pprof/goroutine?debug=1", "")
	m := goroutineTotal.FindSubmatch(r.Body)
	if r.Status != 200 || m == nil {
		t.Fatalf("goroutine profile: %d %.200s", r.Status, r.Body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// maxPipes is how many connections the store opens to one Redis server:
// rueidis' default 2^PipelineMultiplex = 4, opened lazily as keys of other
// slots come up, each with a reading and a writing goroutine.
const maxPipes = 4

// closeConns closes the keep-alive connections between the test and the
// gateways and between the gateways and the upstream, whose goroutines
// would otherwise count in a gateway's total.
func closeConns(up *gt.Upstream) {
	gt.HTTPClient.CloseIdleConnections()
	up.CloseClientConnections()
}

// TestRedisOutageMidLoad kills Redis while two gateways serve a steady
// load: no request passes without a valid identity, protected calls answer
// 503 while Redis is down and the token endpoint 503 temporarily_unavailable,
// and both gateways serve again once Redis is back, without a restart and
// without leaking goroutines or connections.
func TestRedisOutageMidLoad(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)
	gws := redisGateways(t, 2, storeURL(srv.URL()), "10s", up)
	rc := redisClient(t, srv.Addr())
	access, _ := passwordToken(t, gws[0])

	// Baselines, with the store warm on both gateways and no client
	// connection held open.
	for _, g := range gws {
		if s := status(t, g, access); s != 200 {
			t.Fatalf("warm-up call on %s: %d", g.URL, s)
		}
	}
	closeConns(up)
	var baseGoroutines []int
	for _, g := range gws {
		baseGoroutines = append(baseGoroutines, goroutines(t, g))
	}
	baseClients := infoField(t, rc, "clients", "connected_clients")

	l := startLoad(gws, access)
	defer l.Stop()
	for i := range gws {
		poll.Until(t, 10*time.Second, "load served before the outage", func() bool { return l.count(i, 0, 200) >= 20 })
	}

	l.Phase.Store(1)
	killed := time.Now()
	srv.Stop()
	for i := range gws {
		// Many failed calls, so that a leak per failure would show.
		poll.Until(t, 10*time.Second, "gateways answer 503 while Redis is down", func() bool { return l.count(i, 1, 503) >= 50 })
	}
	for _, g := range gws {
		for _, form := range []url.Values{
			{"grant_type": {"client_credentials"}},
			{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}},
		} {
			r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", form)
			if r.Status != 503 || r.Str("error") != "temporarily_unavailable" {
				t.Fatalf("token endpoint with Redis down (%s): %d %s", form.Get("grant_type"), r.Status, r.Body)
			}
		}
	}

	l.Phase.Store(2)
	restarted := time.Now()
	srv.Restart() // empty: the old token is gone, so it gets 401 from now on
	var fresh []string
	for _, g := range gws {
		var tok string
		poll.Until(t, 10*time.Second, "token endpoint serves again after Redis is back", func() bool {
			r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{
				"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
			tok = r.Str("access_token")
			return r.Status == 200
		})
		fresh = append(fresh, tok)
	}
	for _, g := range gws {
		for _, tok := range fresh {
			if s := status(t, g, tok); s != 200 {
				t.Fatalf("new token on %s after recovery: %d", g.URL, s)
			}
		}
	}
	for i := range gws {
		poll.Until(t, 10*time.Second, "the old token refused after Redis came back empty", func() bool { return l.count(i, 2, 401) >= 1 })
	}
	results := l.Stop()

	// Every call answered 200 before the kill; 503 while Redis was down
	// (or 200 in the moment before a gateway noticed); 200, 503 or 401
	// after the restart. Nothing else, and no broken connection.
	allowed := map[int32]map[int]bool{0: {200: true}, 1: {200: true, 503: true}, 2: {200: true, 503: true, 401: true}}
	counts := map[string]int{}
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("gateway %d, phase %d: %v", r.gateway, r.phase, r.err)
		}
		// A call tagged with a phase may be served in the next one: sent
		// just before the kill, or while Redis was down and waiting for
		// it to come back, empty.
		late := r.phase == 0 && r.status == 503 && r.end.After(killed) ||
			r.phase == 1 && r.status == 401 && r.end.After(restarted)
		if !allowed[r.phase][r.status] && !late {
			t.Fatalf("gateway %d, phase %d: status %d", r.gateway, r.phase, r.status)
		}
		// A value cached before the kill may still answer until the
		// gateway notices the broken connections (at once, for a killed
		// server), and never beyond the bound a revocation has.
		if r.phase == 1 && r.status == 200 && r.start.After(killed.Add(revocationBound)) {
			t.Fatalf("gateway %d answered 200 %v after Redis was killed", r.gateway, r.start.Sub(killed))
		}
		counts[fmt.Sprintf("phase%d/%d", r.phase, r.status)]++
	}
	t.Logf("calls by phase and status: %v", counts)

	// The upstream saw only requests with the token's identity.
	for i, h := range up.Requests() {
		if h.Get("X-User-Id") != aliceID || h.Get("X-Oauth-Client-Id") != "app" {
			t.Fatalf("upstream request %d arrived without a valid identity: X-User-ID=%q X-OAuth-Client-ID=%q",
				i, h.Get("X-User-Id"), h.Get("X-Oauth-Client-Id"))
		}
	}

	// No leak: goroutines and Redis connections stay within what the
	// store's connection pool may hold once the HTTP keep-alive connections
	// are closed; a leak per failed call would exceed that many times over.
	closeConns(up)
	for i, g := range gws {
		defer func() {
			if t.Failed() {
				t.Logf("gateway %d goroutines:\n%s", i, gt.Get(t, g.AdminURL+"/debug/pprof/goroutine?debug=1", "").Body)
			}
		}()
		limit := baseGoroutines[i] + 2*(maxPipes-1)
		poll.Until(t, 5*time.Second, fmt.Sprintf("gateway %d goroutines down to at most %d", i, limit), func() bool {
			return goroutines(t, g) <= limit
		})
	}
	limit := len(gws)*maxPipes + 1 // and the test's own connection
	if n := infoField(t, rc, "clients", "connected_clients"); n > limit {
		t.Fatalf("Redis has %d clients after recovery, want at most %d (%d before the outage)", n, limit, baseClients)
	}
}

// reloadConfig is gt.Config with a grace period that lets the old config
// finish its requests: the harness' 1ns cuts them off by design.
func reloadConfig(oauthBlock, site string) string {
	return strings.Replace(gt.Config(oauthBlock, site), "grace_period 1ns", "grace_period 10s", 1)
}

// TestRedisReloadKeepsPool reloads the config through the admin API while
// requests run: every request succeeds, and the store keeps its Redis
// connections (the pool outlives the old config).
func TestRedisReloadKeepsPool(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)
	oauthBlock := redisOAuth(t, storeURL(srv.URL()), "10s")
	g := gt.Start(t, reloadConfig(oauthBlock, redisSite(up)))
	rc := redisClient(t, srv.Addr())
	access, refresh := passwordToken(t, g)
	if s := status(t, g, access); s != 200 {
		t.Fatalf("before reload: %d", s)
	}
	dialsBefore := infoField(t, rc, "stats", "total_connections_received")
	closeConns(up)
	goroutinesBefore := goroutines(t, g)

	// Caddy 2.11 itself may reset a connection it accepts during the
	// listener handoff of a reload (a plain reverse_proxy config does the
	// same), before any request is read: the load resends such a GET once,
	// as idempotent clients do. Every answer must be 200.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	l := startLoadWith(client, []*gt.Gateway{g}, access, true)
	defer l.Stop()
	for gen := 1; gen <= 2; gen++ {
		poll.Until(t, 10*time.Second, "load running", func() bool { return l.count(0, int32(gen-1), 200) >= 20 })
		site := fmt.Sprintf("header X-Config-Gen %d\n%s", gen, redisSite(up))
		if r := g.Reload(reloadConfig(oauthBlock, site), false); r.Status != 200 {
			t.Fatalf("reload %d: %d %s\n%s", gen, r.Status, r.Body, g.Logs())
		}
		poll.Until(t, 10*time.Second, "the new config serves", func() bool {
			r := gt.Get(t, g.URL+"/api", access)
			return r.Status == 200 && r.Header.Get("X-Config-Gen") == strconv.Itoa(gen)
		})
		l.Phase.Store(int32(gen))
	}
	poll.Until(t, 10*time.Second, "load running after the reloads", func() bool { return l.count(0, 2, 200) >= 20 })
	results := l.Stop()
	for _, r := range results {
		if r.err != nil || r.status != 200 {
			t.Fatalf("call during reload (phase %d): status %d, err %v", r.phase, r.status, r.err)
		}
	}
	retried := 0
	for _, r := range results {
		if r.retried {
			retried++
		}
	}
	t.Logf("%d calls, all 200, across two reloads (%d resent after a reset connection)", len(results), retried)

	if dials := infoField(t, rc, "stats", "total_connections_received"); dials != dialsBefore {
		t.Fatalf("Redis received %d new connections across the reloads, want 0 (the pool keeps them)", dials-dialsBefore)
	}
	if r := refreshOn(t, g, refresh); r.Status != 200 {
		t.Fatalf("refresh after reload: %d %s", r.Status, r.Body)
	}
	// The old configs left nothing running (the store's pipes may have
	// grown by key slot, see TestRedisOutageMidLoad).
	closeConns(up)
	limit := goroutinesBefore + 2*(maxPipes-1)
	poll.Until(t, 5*time.Second, fmt.Sprintf("goroutines down to at most %d after the reloads", limit), func() bool {
		return goroutines(t, g) <= limit
	})
	if n := strings.Count(g.Logs(), "redis store connected"); n != 1 {
		t.Fatalf("the store was opened %d times, want once:\n%s", n, g.Logs())
	}
}
