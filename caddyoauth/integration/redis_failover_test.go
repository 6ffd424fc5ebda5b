package integration

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// Phases of the failover test.
const (
	beforeKill  int32 = iota // the primary serves
	switching                // killed, until the gateway serves again
	followed                 // the gateway serves from the promoted replica
	replicaBack              // the old primary is back, as a replica
)

// failoverCall is one call made by the failover load.
type failoverCall struct {
	kind   string // "token", "valid" (a token the load was issued), "forged"
	phase  int32
	status int
	err    error
	token  string // issued (kind token, status 200) or presented
	// identity is true when a 200 from /api carried the identity of the
	// client_credentials token (the upstream echoes what it received).
	identity bool
}

// failoverLoad issues client_credentials tokens and calls /api with the
// last token it got and with a forged one, from a few goroutines, until
// stopped. It must not use t: it runs off the test goroutine.
type failoverLoad struct {
	*gt.Load[failoverCall]
}

func startFailoverLoad(g *gt.Gateway, workers int) *failoverLoad {
	l := &failoverLoad{gt.NewLoad[failoverCall]()}
	for range workers {
		var last string
		l.Go(func() {
			if tok := l.issue(g); tok != "" {
				last = tok
			}
			if last != "" {
				l.call(g, "valid", last)
			}
			l.call(g, "forged", "forged-"+rand.Text())
		})
	}
	return l
}

// issue asks for a token and returns it when the answer was a token.
func (l *failoverLoad) issue(g *gt.Gateway) string {
	c := failoverCall{kind: "token", phase: l.Phase.Load()}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	resp, err := gt.HTTPClient.Do(req)
	if err == nil {
		var body struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		c.status = resp.StatusCode
		if c.status == 200 {
			c.token = body.AccessToken
		}
	}
	c.err = err
	l.Record(c)
	return c.token
}

// call calls /api with token.
func (l *failoverLoad) call(g *gt.Gateway, kind, token string) {
	c := failoverCall{kind: kind, phase: l.Phase.Load(), token: token}
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/api", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := gt.HTTPClient.Do(req)
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.status, err = resp.StatusCode, rerr
		c.identity = c.status == 200 && echoedIdentity(body)
	}
	c.err = err
	l.Record(c)
}

// echoedIdentity tells whether the upstream's echo shows the identity of
// the client_credentials token: client app, acting as its user svc-user.
func echoedIdentity(body []byte) bool {
	var echo struct {
		Headers http.Header `json:"headers"`
	}
	if json.Unmarshal(body, &echo) != nil {
		return false
	}
	return echo.Headers.Get("X-User-Id") == "svc-user" && echo.Headers.Get("X-Oauth-Client-Id") == "app"
}

// count is how many calls of kind in phase answered status so far.
func (l *failoverLoad) count(kind string, phase int32, status int) int {
	return l.Count(func(c failoverCall) bool { return c.kind == kind && c.phase == phase && c.status == status })
}

// TestRedisSentinelFailover kills the Redis primary of a Sentinel setup
// (one primary, one replica, three Sentinels) while a gateway issues
// client_credentials tokens and validates them. Protected calls answer
// 200 with the token's identity or 503 throughout, never 200 for a forged
// token; the gateway follows the promoted replica without a restart. With
// replicas_ack 1, every token whose response reached the client validates
// after the failover, the token endpoint answers 503 while the new primary
// has no replica, and serves again once the old primary is back as one.
// Without it, tokens answered just before the kill may be lost to
// asynchronous replication: the test reports how many.
func TestRedisSentinelFailover(t *testing.T) {
	t.Run("replicas_ack", func(t *testing.T) { sentinelFailover(t, true) })
	t.Run("async", func(t *testing.T) { sentinelFailover(t, false) })
}

func sentinelFailover(t *testing.T, ack bool) {
	primary := testredis.Start(t)
	replica := testredis.StartReplica(t, primary)
	sentinels := testredis.StartSentinels(t, primary, "mymaster", 3)
	addrs := sentinels.Addrs()
	ackLine := ""
	if ack {
		ackLine = "\n\t\treplicas_ack 1"
	}
	storeArgs := fmt.Sprintf("redis://%s/0 {\n\t\tsentinel mymaster %s\n\t\tkey_prefix %s%s\n\t}",
		addrs[0], strings.Join(addrs[1:], " "), redisPrefix, ackLine)
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(redisOAuth(t, storeArgs, "10s"), redisSite(up)))
	defer func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.Logs())
		}
	}()

	l := startFailoverLoad(g, 3)
	defer l.Stop()
	poll.Until(t, 20*time.Second, "tokens issued and validated before the kill", func() bool {
		return l.count("valid", beforeKill, 200) >= 30
	})
	// The tokens issued so far are on the replica, whatever the mode: the
	// gateway's following them shows it serves from the promoted replica.
	offset := infoInt(t, primary, "replication", "master_repl_offset")
	poll.Until(t, 10*time.Second, "the replica caught up", func() bool {
		return infoInt(t, replica, "replication", "slave_repl_offset") >= offset
	})
	var early string
	for _, c := range l.Records() {
		if c.kind == "token" && c.status == 200 {
			early = c.token
			break
		}
	}

	l.Phase.Store(switching)
	primary.Stop()
	poll.Until(t, 10*time.Second, "protected calls answer 503 during the switch", func() bool {
		return l.count("valid", switching, 503) >= 1
	})
	poll.Until(t, 20*time.Second, "a Sentinel names the replica the new primary", func() bool {
		a, err := sentinels.Master()
		return err == nil && a == replica.Addr()
	})
	poll.Until(t, 20*time.Second, "the gateway validates from the new primary, without a restart", func() bool {
		return status(t, g, early) == 200
	})
	l.Phase.Store(followed)

	if ack {
		// The new primary has no replica: a token now could vanish.
		r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}})
		if r.Status != 503 || r.Str("error") != "temporarily_unavailable" {
			t.Fatalf("token endpoint with replicas_ack 1 and no replica: %d %s", r.Status, r.Body)
		}
	}
	// The old primary comes back empty; the Sentinels make it a replica of
	// the new one.
	primary.Restart()
	l.Phase.Store(replicaBack)
	var fresh string
	poll.Until(t, 20*time.Second, "the token endpoint serves again", func() bool {
		r := gt.PostForm(t, g.URL+"/oauth/token", "app", "app-secret", url.Values{"grant_type": {"client_credentials"}})
		fresh = r.Str("access_token")
		return r.Status == 200
	})
	if s := status(t, g, fresh); s != 200 {
		t.Fatalf("a token issued after the failover: %d", s)
	}
	poll.Until(t, 20*time.Second, "the load issues tokens again", func() bool {
		return l.count("token", replicaBack, 200) >= 5
	})
	calls := l.Stop()

	// Every token whose response reached the load validates now.
	lost := map[string]bool{}
	issued := 0
	for _, c := range calls {
		if c.kind != "token" || c.status != 200 {
			continue
		}
		issued++
		switch s := status(t, g, c.token); {
		case s == 401 && (!ack && c.phase <= switching):
			lost[c.token] = true
		case s != 200:
			t.Fatalf("a token issued in phase %d (replicas_ack %v) answers %d after the failover", c.phase, ack, s)
		}
	}

	counts := map[string]int{}
	for _, c := range calls {
		counts[fmt.Sprintf("%s/phase%d/%d", c.kind, c.phase, c.status)]++
		if c.err != nil {
			t.Fatalf("%s call in phase %d: %v", c.kind, c.phase, c.err)
		}
		switch c.kind {
		case "token":
			if c.status != 200 && c.status != 503 {
				t.Fatalf("token endpoint in phase %d: %d", c.phase, c.status)
			}
		case "forged":
			if c.status != 401 && c.status != 503 {
				t.Fatalf("a forged token in phase %d: %d, want 401 or 503", c.phase, c.status)
			}
		case "valid":
			switch {
			case c.status == 200 && !c.identity:
				t.Fatalf("a 200 in phase %d without the token's identity", c.phase)
			case c.status == 200 || c.status == 503:
			case c.status == 401 && lost[c.token]:
			default:
				t.Fatalf("an issued token in phase %d: %d (replicas_ack %v)", c.phase, c.status, ack)
			}
		}
	}
	for i, h := range up.Requests() {
		if h.Get("X-User-Id") != "svc-user" || h.Get("X-Oauth-Client-Id") != "app" {
			t.Fatalf("upstream request %d without a valid identity: X-User-ID=%q X-OAuth-Client-ID=%q",
				i, h.Get("X-User-Id"), h.Get("X-Oauth-Client-Id"))
		}
	}
	t.Logf("replicas_ack %v: %d tokens answered, %d lost in the failover; calls by kind, phase and status: %v",
		ack, issued, len(lost), counts)
}

// infoInt reads a numeric field of a server's INFO section.
func infoInt(t testing.TB, s *testredis.Server, section, field string) int {
	t.Helper()
	info, err := s.Info(section)
	if err != nil {
		t.Fatalf("INFO %s of %s: %v", section, s.Addr(), err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO %s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("INFO %s of %s has no %s", section, s.Addr(), field)
	return 0
}
