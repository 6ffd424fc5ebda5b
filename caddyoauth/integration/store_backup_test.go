package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
	"github.com/caddyoauth/gateway/internal/testredis"
)

// Backup, restore and copy of the token store, with the `caddy oauth
// store` commands run as processes against real gateways.

// backupOAuth is an oauth block on storeLine with the client app (every
// grant but authorization_code) and the user alice, as redisOAuth, plus
// extra lines.
func backupOAuth(t testing.TB, storeLine, extra string) string {
	return fmt.Sprintf(`
oauth {
	%s
	rate_limit off
	access_token_ttl %s
	refresh_token_ttl %s
	%s
	client app {
		secret app-secret
		grants client_credentials password refresh_token
		scopes read write
		user svc-user
	}
	user alice %s %s
}`, storeLine, redisAccessTTL, redisRefreshTTL, extra, gt.BcryptHash(t, alicePassword), aliceID)
}

// storeCLI runs `caddy oauth store <args>` and returns its standard
// output and error apart.
func storeCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(gt.Binary(t), append([]string{"oauth", "store"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return m
}

// issued is a token response and when its answer arrived.
type issued struct {
	access, refresh string
	at              time.Time
	err             string // the request failed
}

// loadIssuer issues client_credentials tokens on g from several goroutines
// until stopped, keeping each token with the time its answer arrived, or
// the failure of its request.
type loadIssuer struct {
	*gt.Load[issued]
}

func startIssuing(g *gt.Gateway, workers int) *loadIssuer {
	l := &loadIssuer{gt.NewLoad[issued]()}
	client := &http.Client{Timeout: 10 * time.Second}
	for range workers {
		l.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials&scope=read"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("app", "app-secret")
			resp, err := client.Do(req)
			if err != nil {
				l.Record(issued{err: err.Error()})
				return
			}
			var body struct {
				AccessToken string `json:"access_token"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil || body.AccessToken == "" {
				l.Record(issued{err: fmt.Sprintf("token request during the backup: %d %v", resp.StatusCode, err)})
				return
			}
			l.Record(issued{access: body.AccessToken, at: time.Now()})
		})
	}
	return l
}

func (l *loadIssuer) count() int {
	return l.Count(func(i issued) bool { return i.err == "" })
}

// end stops the load and returns its tokens; a failed request fails t.
func (l *loadIssuer) end(t *testing.T) []issued {
	t.Helper()
	var toks []issued
	for _, i := range l.Stop() {
		if i.err != "" {
			t.Fatalf("token requests failed while the store was read: %s", i.err)
		}
		toks = append(toks, i)
	}
	return toks
}

// TestStoreBackupUnderLoad: `caddy oauth store backup` takes a snapshot of
// a running gateway's file store while tokens are being issued, and
// `caddy oauth store restore` loads it into a new gateway's empty store:
// every token issued before the backup began validates there through
// oauth_protect with its user, and its refresh tokens refresh. The
// snapshot is private to its owner and holds no token; a restore into a
// store holding records is refused unless forced.
func TestStoreBackupUnderLoad(t *testing.T) {
	backupUnderLoad(t, "store file {{.DataDir}}/oauth.db", "file", "point-in-time")
}

// TestStoreBackupUnderLoadRedis: the same from a gateway on Redis, whose
// snapshot is consistent per key, into a gateway on the file store.
func TestStoreBackupUnderLoadRedis(t *testing.T) {
	srv := testredis.Start(t)
	backupUnderLoad(t, "store redis "+storeURL(srv.URL()), "redis", "per-key")
}

func backupUnderLoad(t *testing.T, storeLine, backend, consistency string) {
	up := gt.StartUpstream(t)
	a := gt.Start(t, gt.Config(backupOAuth(t, storeLine, ""), redisSite(up)))
	cfg := gt.Config(backupOAuth(t, "store file {{.DataDir}}/oauth.db", ""), redisSite(up))

	var before []issued
	for range 10 {
		access, refresh := passwordToken(t, a)
		before = append(before, issued{access: access, refresh: refresh, at: time.Now()})
	}
	load := startIssuing(a, 4)
	poll.Until(t, 10*time.Second, "tokens issued by the load", func() bool { return load.count() >= 20 })

	snap := filepath.Join(t.TempDir(), "oauth-backup.jsonl")
	began := time.Now()
	out, errOut, err := storeCLI(t, "backup", snap, "--address", a.Params.Admin, "--json")
	during := load.end(t)
	if err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	for _, tok := range during {
		if tok.at.Before(began) {
			before = append(before, tok)
		}
	}
	if len(before) < 30 {
		t.Fatalf("only %d tokens were issued before the backup began", len(before))
	}
	t.Logf("%d tokens issued before the backup began, %d while it ran", len(before), len(during)+10-len(before))
	res := decodeJSON(t, out)
	if res["backend"] != backend || res["consistency"] != consistency || res["records"].(float64) < float64(len(before)) {
		t.Fatalf("backup answer: %s", out)
	}
	fi, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), `{"format":"caddy-oauth-store","version":1,`) {
		t.Fatalf("snapshot header: %.200s", data)
	}
	for _, tok := range before {
		if bytes.Contains(data, []byte(tok.access)) || (tok.refresh != "" && bytes.Contains(data, []byte(tok.refresh))) {
			t.Fatal("the snapshot holds a token in plain")
		}
	}

	// A running gateway's store holds records: refused without --force.
	_, errOut, err = storeCLI(t, "restore", snap, "--address", a.Params.Admin)
	if err == nil || !strings.Contains(errOut, "store_not_empty") {
		t.Fatalf("restore into a store holding records: err=%v\n%s", err, errOut)
	}

	b := gt.Start(t, cfg)
	if s := status(t, b, before[0].access); s != 401 {
		t.Fatalf("a token of A on the new gateway before the restore: %d, want 401", s)
	}
	out, errOut, err = storeCLI(t, "restore", snap, "--address", b.Params.Admin, "--json")
	if err != nil {
		t.Fatalf("restore: %v\n%s%s", err, out, errOut)
	}
	if res := decodeJSON(t, out); res["restored"].(float64) < float64(len(before)) || res["forced"] != false {
		t.Fatalf("restore answer: %s", out)
	}
	for i, tok := range before {
		r := gt.Get(t, b.URL+"/api", tok.access)
		want := "svc-user"
		if tok.refresh != "" {
			want = aliceID
		}
		if r.Status != 200 || up.Last().Get("X-User-Id") != want {
			t.Fatalf("token %d of %d, issued before the backup, on the restored gateway: %d, X-User-ID %q, want 200 and %s",
				i+1, len(before), r.Status, up.Last().Get("X-User-Id"), want)
		}
	}
	for _, tok := range before[:3] {
		r := refreshOn(t, b, tok.refresh)
		if r.Status != 200 || status(t, b, r.Str("access_token")) != 200 {
			t.Fatalf("refresh on the restored gateway: %d %s", r.Status, r.Body)
		}
	}

	// Now b holds records: a second restore is refused, unless forced.
	if _, errOut, err := storeCLI(t, "restore", snap, "--address", b.Params.Admin); err == nil || !strings.Contains(errOut, "store_not_empty") {
		t.Fatalf("second restore without --force: err=%v\n%s", err, errOut)
	}
	if out, errOut, err := storeCLI(t, "restore", snap, "--address", b.Params.Admin, "--force"); err != nil || !strings.Contains(out, "records restored") {
		t.Fatalf("restore --force: %v\n%s%s", err, out, errOut)
	}
}

// TestStoreRestoreRevokesRemovedUsers: a snapshot restored into a gateway
// whose config no longer names one of its users brings none of that
// user's tokens back to life: the restore revokes them, as the start of a
// config without the user does.
func TestStoreRestoreRevokesRemovedUsers(t *testing.T) {
	up := gt.StartUpstream(t)
	bob := fmt.Sprintf("user bob %s user-bob", gt.BcryptHash(t, "bob-pw"))
	a := gt.Start(t, gt.Config(backupOAuth(t, "store memory", bob), redisSite(up)))
	aliceAccess, _ := passwordToken(t, a)
	r := gt.PostForm(t, a.URL+"/oauth/token", "app", "app-secret", url.Values{
		"grant_type": {"password"}, "username": {"bob"}, "password": {"bob-pw"}, "scope": {"read"}})
	if r.Status != 200 {
		t.Fatalf("bob's token: %d %s", r.Status, r.Body)
	}
	bobAccess, bobRefresh := r.Str("access_token"), r.Str("refresh_token")
	snap := filepath.Join(t.TempDir(), "snap.jsonl")
	if out, errOut, err := storeCLI(t, "backup", snap, "--address", a.Params.Admin); err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}

	b := gt.Start(t, gt.Config(backupOAuth(t, "store memory", ""), redisSite(up)))
	if out, errOut, err := storeCLI(t, "restore", snap, "--address", b.Params.Admin); err != nil {
		t.Fatalf("restore: %v\n%s%s", err, out, errOut)
	}
	if s := status(t, b, aliceAccess); s != 200 {
		t.Fatalf("alice's token after the restore: %d, want 200", s)
	}
	if s := status(t, b, bobAccess); s != 401 {
		t.Fatalf("the token of bob, whom the config no longer names, after the restore: %d, want 401", s)
	}
	if r := refreshOn(t, b, bobRefresh); r.Status != 400 || r.Str("error") != "invalid_grant" {
		t.Fatalf("bob's refresh token after the restore: %d %s, want 400 invalid_grant", r.Status, r.Body)
	}
	if !strings.Contains(b.Logs(), "user removed from the config") {
		t.Fatal("the restore did not log bob's revocation")
	}
}

// TestStoreRestoreRefusesBadInput: the commands and the admin API refuse
// what is not a whole snapshot, with a clear error and without writing
// anything.
func TestStoreRestoreRefusesBadInput(t *testing.T) {
	up := gt.StartUpstream(t)
	g := gt.Start(t, gt.Config(backupOAuth(t, "store memory", ""), redisSite(up)))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	if out, errOut, err := storeCLI(t, "backup", good, "--address", g.Params.Admin); err != nil || !strings.Contains(out, "records written to") {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ name, file, want string }{
		{"missing file", filepath.Join(dir, "nope.jsonl"), "cannot read the snapshot"},
		{"a folder", dir, "is a folder"},
		{"not a snapshot", write("junk", "hello\n"), "not a valid store snapshot"},
		{"cut off", write("cut", strings.Join(lines[:len(lines)-2], "")), "without its closing line"},
		{"newer version", write("v2", strings.Replace(string(data), `"version":1`, `"version":9`, 1)), "format version 9"},
	} {
		if _, errOut, err := storeCLI(t, "restore", tc.file, "--address", g.Params.Admin); err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("restore of %s: err=%v, want an error saying %q\n%s", tc.name, err, tc.want, errOut)
		}
	}
	if _, errOut, err := storeCLI(t, "restore", "--address", g.Params.Admin); err == nil || !strings.Contains(errOut, "accepts 1 arg") {
		t.Errorf("restore without a file: err=%v\n%s", err, errOut)
	}
	if _, errOut, err := storeCLI(t, "backup", dir, "--address", g.Params.Admin); err == nil || !strings.Contains(errOut, "is a folder") {
		t.Errorf("backup into a folder: err=%v\n%s", err, errOut)
	}
	if _, errOut, err := storeCLI(t, "backup", filepath.Join(dir, "x"), "--address", fmt.Sprintf("127.0.0.1:%d", gt.FreePort(t))); err == nil || !strings.Contains(errOut, "admin API") {
		t.Errorf("backup from an unreachable admin API: err=%v\n%s", err, errOut)
	}

	// The admin API itself: a damaged body is 400 and writes nothing, the
	// wrong method or media type is refused.
	post := func(body, ctype, query string) *gt.Response {
		req, err := http.NewRequest(http.MethodPost, g.AdminURL+"/oauth/store/restore"+query, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ctype)
		return gt.Do(t, req)
	}
	header := lines[0]
	forged := header + `{"k":"at:forged","v":"eyJ1IjoiZXZlIn0="}` + "\n" + `{"k":"\u0000format","v":""}` + "\n" + `{"end":true,"records":2}` + "\n"
	wantError(t, post(forged, "application/x-ndjson", "?force=true"), 400, "invalid_snapshot")
	wantError(t, post(header, "application/x-ndjson", ""), 400, "invalid_snapshot")
	wantError(t, post(string(data), "text/plain", ""), 415, "invalid_request")
	wantError(t, post(string(data), "application/x-ndjson", "?force=maybe"), 400, "invalid_request")
	r := gt.Get(t, g.AdminURL+"/oauth/store/restore", "")
	wantError(t, r, 405, "invalid_request")
	if r.Header.Get("Allow") != "POST" {
		t.Fatalf("Allow: %q", r.Header.Get("Allow"))
	}
	// Nothing of the forged snapshot was written, though its first line
	// was valid: the record after it was refused first.
	var probe bytes.Buffer
	req, _ := http.NewRequest(http.MethodGet, g.AdminURL+"/oauth/store/backup", nil)
	resp, err := gt.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = probe.ReadFrom(resp.Body)
	resp.Body.Close()
	if strings.Contains(probe.String(), "at:forged") {
		t.Fatal("a refused snapshot left a record in the store")
	}
}

// TestStoreCopyFileToRedis: a gateway on the file store issues tokens
// (password: access and refresh; client_credentials, also for a client
// registered through the admin API) as JWTs signed with its generated key;
// it stops, `caddy oauth store copy` moves the file to Redis, and a
// gateway with the same config on Redis accepts every access token, with
// its user, and refreshes every refresh token. Each record keeps what was
// left of its lifetime, no more.
func TestStoreCopyFileToRedis(t *testing.T) {
	srv := testredis.Start(t)
	up := gt.StartUpstream(t)
	extra := "token_format jwt\n\tissuer https://auth.example.com"
	dir := t.TempDir()
	fileCfg := gt.Config(backupOAuth(t, "store file {{.DataDir}}/oauth.db", extra), redisSite(up))
	a := gt.Start(t, fileCfg, gt.WithDataDir(dir))

	reg := adminJSON(t, a, http.MethodPost, "/oauth/clients", `{"client_name":"Partner","grant_types":["client_credentials"],"scope":"read","user_id":"partner-1"}`)
	if reg.Status != 201 {
		t.Fatalf("registering a client: %d %s", reg.Status, reg.Body)
	}
	dynID, dynSecret := reg.Str("client_id"), reg.Str("client_secret")

	type tok struct {
		issued
		user string
		sent time.Time
	}
	var toks []tok
	for range 5 {
		sent := time.Now()
		access, refresh := passwordToken(t, a)
		toks = append(toks, tok{issued{access: access, refresh: refresh, at: time.Now()}, aliceID, sent})
	}
	for _, c := range [][3]string{{"app", "app-secret", "svc-user"}, {dynID, dynSecret, "partner-1"}} {
		for range 3 {
			sent := time.Now()
			r := gt.PostForm(t, a.URL+"/oauth/token", c[0], c[1], url.Values{"grant_type": {"client_credentials"}})
			if r.Status != 200 {
				t.Fatalf("client_credentials for %s: %d %s", c[0], r.Status, r.Body)
			}
			toks = append(toks, tok{issued{access: r.Str("access_token"), at: time.Now()}, c[2], sent})
		}
	}
	a.Stop()

	redisStore := srv.URL() + "?prefix=" + redisPrefix
	from := "file:" + filepath.Join(dir, "oauth.db")
	copyStart := time.Now()
	out, errOut, err := storeCLI(t, "copy", "--from", from, "--to", redisStore, "--json")
	if err != nil {
		t.Fatalf("copy: %v\n%s%s", err, out, errOut)
	}
	copied := time.Now()
	if res := decodeJSON(t, out); res["records"].(float64) < float64(len(toks)) {
		t.Fatalf("copy answer: %s", out)
	}

	// Lifetimes: what was left, never more. An access token issued at
	// [sent, at] expires at most life after at and at least life after
	// sent; its Redis key, read now, has that less the time since. Redis
	// counts whole milliseconds on a clock it caches between events (a
	// key set there directly reads a few ms long on a busy machine): that
	// is the slack above, far less than the time the stop and the copy
	// took, which a lifetime started afresh would show.
	const redisClock = 25 * time.Millisecond
	rc := redisClient(t, srv.Addr())
	pttl := func(key string) time.Duration {
		t.Helper()
		ms, err := rc.Do(context.Background(), rc.B().Pttl().Key(redisPrefix+"k:"+key).Build()).AsInt64()
		if err != nil || ms <= 0 {
			t.Fatalf("PTTL of %s: %d, %v", key, ms, err)
		}
		return time.Duration(ms) * time.Millisecond
	}
	check := func(kind, key string, tk tok, life time.Duration) {
		t.Helper()
		readStart := time.Now()
		got := pttl(key)
		readEnd := time.Now()
		upper := tk.at.Add(life).Sub(readStart) + redisClock
		lower := tk.sent.Add(life).Sub(readEnd) - copied.Sub(copyStart) - redisClock
		if got > upper || got < lower {
			t.Fatalf("PTTL of %s after the copy: %v, want within [%v, %v]", kind, got, lower, upper)
		}
	}
	for _, tk := range toks {
		check("an access token", "at:"+tokenDigest(tk.access), tk, redisAccessTTL)
		if tk.refresh != "" {
			check("a refresh token", "rt:"+tokenDigest(tk.refresh), tk, redisRefreshTTL)
		}
	}

	// A second copy into the store, now holding records, is refused.
	if _, errOut, err := storeCLI(t, "copy", "--from", from, "--to", redisStore); err == nil || !strings.Contains(errOut, "already holds records") {
		t.Fatalf("copy into a store holding records: err=%v\n%s", err, errOut)
	}

	b := gt.Start(t, gt.Config(backupOAuth(t, "store redis "+storeURL(srv.URL()), extra), redisSite(up)))
	for i, tk := range toks {
		r := gt.Get(t, b.URL+"/api", tk.access)
		if r.Status != 200 || up.Last().Get("X-User-Id") != tk.user {
			t.Fatalf("token %d on the Redis gateway: %d, X-User-ID %q, want 200 and %s", i, r.Status, up.Last().Get("X-User-Id"), tk.user)
		}
	}
	for _, tk := range toks {
		if tk.refresh == "" {
			continue
		}
		r := refreshOn(t, b, tk.refresh)
		if r.Status != 200 || status(t, b, r.Str("access_token")) != 200 {
			t.Fatalf("refresh on the Redis gateway: %d %s", r.Status, r.Body)
		}
	}
	if r := clientCredentials(t, b, dynID, dynSecret); r.Status != 200 {
		t.Fatalf("the registered client on the Redis gateway: %d %s", r.Status, r.Body)
	}
}

// TestStoreCopyRefusesBadInput: copy names each mistake and writes
// nothing.
func TestStoreCopyRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	srv := testredis.Start(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "file:" + filepath.Join(dir, "b.db")}, "name both stores"},
		{[]string{"--from", "file:" + filepath.Join(dir, "missing.db"), "--to", "file:" + filepath.Join(dir, "b.db")}, "there is no file store at"},
		{[]string{"--from", filepath.Join(dir, "a.db"), "--to", srv.URL()}, "file:<path> or a Redis URL"},
		{[]string{"--from", "file:" + filepath.Join(dir, "a.db"), "--to", "file:" + filepath.Join(dir, "a.db")}, "the same store"},
		{[]string{"--from", srv.URL(), "--to", srv.URL() + "?prefix=oauth:x:"}, "the same store"},
		{[]string{"--from", srv.URL() + "?prefix=a:", "--from-prefix", "b:", "--to", "file:" + filepath.Join(dir, "b.db")}, "given twice"},
		{[]string{"--from", "redis://:hunter2@127.0.0.1:port/0", "--to", "file:" + filepath.Join(dir, "b.db")}, "--from: invalid Redis URL"},
		{[]string{"--from", "redis://:hunter2@127.0.0.1:1/0", "--to", "file:" + filepath.Join(dir, "b.db")}, "Redis store at 127.0.0.1:1/0"},
		{[]string{"--from", srv.URL() + "?prefix=empty:", "--to", "file:" + filepath.Join(dir, "b.db")}, "holds no records"},
	} {
		_, errOut, err := storeCLI(t, append([]string{"copy"}, tc.args...)...)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("copy %v: err=%v, want an error saying %q\n%s", tc.args, err, tc.want, errOut)
		}
		if strings.Contains(errOut, "hunter2") {
			t.Errorf("copy %v: the error shows the password\n%s", tc.args, errOut)
		}
	}
}

// tokenDigest is the store key part of a token (authz.digest).
func tokenDigest(token string) string {
	d := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(d[:])
}
