package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
	"github.com/caddyoauth/gateway/internal/poll"
)

// fileStoreGateway runs a gateway on the default file store (oauth/oauth.db
// under Caddy's data directory, here dir) with a client_credentials client
// and oauth_protect in front of up. It returns the template, for a second
// process on the same folder.
func fileStoreGateway(t *testing.T, up *gt.Upstream, dir string) (*gt.Gateway, string) {
	t.Helper()
	tmpl := gt.Config(`
oauth {
	# Token bursts; limits_test.go tests the limits.
	rate_limit off
	client svc {
		secret svc-secret
		grants client_credentials
		scopes read
		user service-7
	}
}`, fmt.Sprintf(`
oauth_server
oauth_protect
reverse_proxy %s`, up.Addr()))
	return gt.Start(t, tmpl, gt.WithDataDir(dir)), tmpl
}

// storePath is the default file store under the data folder dir
// (XDG_DATA_HOME, so Caddy's data directory is dir/caddy).
func storePath(dir string) string { return filepath.Join(dir, "caddy", "oauth", "oauth.db") }

func svcToken(t *testing.T, g *gt.Gateway) string {
	t.Helper()
	return clientToken(t, g, "svc", "svc-secret", "")
}

// wantValid checks that tok passes oauth_protect to the upstream as the
// client's user.
func wantValid(t *testing.T, g *gt.Gateway, up *gt.Upstream, tok, when string) {
	t.Helper()
	r := gt.Get(t, g.URL+"/api", tok)
	if r.Status != 200 {
		t.Fatalf("%s: a token got %d %s", when, r.Status, r.Header.Get("WWW-Authenticate"))
	}
	var seen struct{ Headers http.Header }
	if err := json.Unmarshal(r.Body, &seen); err != nil || seen.Headers.Get("X-User-ID") != "service-7" {
		t.Fatalf("%s: the upstream saw %s", when, r.Body)
	}
}

// startRefused runs `caddy run` with the template on the data folder dir
// and new ports, expects the process to exit without serving, and returns
// what it printed.
func startRefused(t *testing.T, tmpl, dir string) string {
	t.Helper()
	var cfg bytes.Buffer
	p := gt.Params{Addr: fmt.Sprintf("127.0.0.1:%d", gt.FreePort(t)), Admin: fmt.Sprintf("127.0.0.1:%d", gt.FreePort(t)), DataDir: dir}
	if err := template.Must(template.New("Caddyfile").Parse(tmpl)).Execute(&cfg, p); err != nil {
		t.Fatal(err)
	}
	return gt.RunRefused(t, cfg.String(), dir)
}

// gatewayPID returns the ID of the gateway process using the data folder
// dir, found in /proc (not from the lock file, whose content is what is
// checked).
func gatewayPID(t *testing.T, dir string) int {
	t.Helper()
	want := []byte("XDG_DATA_HOME=" + dir + "\x00")
	bin := gt.Binary(t)
	var found []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != bin {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(append([]byte{0}, env...), append([]byte{0}, want...)) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("gateway processes on %s: %v, want one", dir, found)
	}
	return found[0]
}

// TestStoreFileTwoGateways: a second gateway on the same file store is
// refused, naming the file, "another process" and the first one's PID;
// the first is unharmed, and its tokens outlive its restart.
func TestStoreFileTwoGateways(t *testing.T) {
	up := gt.StartUpstream(t)
	dir := t.TempDir()
	g, tmpl := fileStoreGateway(t, up, dir)
	before := svcToken(t, g)
	pid := gatewayPID(t, dir)

	out := startRefused(t, tmpl, dir)
	for _, want := range []string{"oauth file store", storePath(dir), "another process", fmt.Sprintf("PID %d", pid)} {
		if !strings.Contains(out, want) {
			t.Errorf("the refused start's output lacks %q:\n%s", want, out)
		}
	}
	if lock, err := os.ReadFile(storePath(dir) + ".lock"); err != nil || strings.TrimSpace(string(lock)) != strconv.Itoa(pid) {
		t.Fatalf("lock file %q, %v; want the first gateway's PID %d", lock, err, pid)
	}

	wantValid(t, g, up, before, "after the refused start")
	after := svcToken(t, g)
	g.Restart()
	for _, tok := range []string{before, after} {
		wantValid(t, g, up, tok, "after a restart")
	}
	// The restarted gateway holds the lock.
	if out := startRefused(t, tmpl, dir); !strings.Contains(out, fmt.Sprintf("PID %d", gatewayPID(t, dir))) {
		t.Fatalf("after the restart, a second start was refused without the new PID:\n%s", out)
	}
}

// TestStoreFileReload: a reload to a config without the file store and
// back (the file closed, then opened again in the same process) keeps the
// tokens, and a reload that keeps the store shares the open file.
func TestStoreFileReload(t *testing.T) {
	up := gt.StartUpstream(t)
	dir := t.TempDir()
	g, tmpl := fileStoreGateway(t, up, dir)
	tok := svcToken(t, g)
	if r := g.Reload(tmpl, true); r.Status != 200 {
		t.Fatalf("reload with the same store: %d %s", r.Status, r.Body)
	}
	wantValid(t, g, up, tok, "after a reload")
	memory := strings.Replace(tmpl, "rate_limit off", "rate_limit off\n\t\tstore memory", 1)
	if r := g.Reload(memory, false); r.Status != 200 {
		t.Fatalf("reload to the memory store: %d %s", r.Status, r.Body)
	}
	if r := g.Reload(tmpl, false); r.Status != 200 {
		t.Fatalf("reload back to the file store: %d %s", r.Status, r.Body)
	}
	wantValid(t, g, up, tok, "after the file store was closed and opened again")
}

// storeCommand runs `caddy oauth store <args>` and returns its output and
// exit status.
func storeCommand(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(gt.Binary(t), append([]string{"oauth", "store"}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("caddy oauth store %v: %v", args, err)
	return "", 0
}

// TestStoreFileDamaged: a record damaged in the middle of the file stops
// the start with its offset and the repair command; check reports it;
// repair keeps the other records and the original; the tokens of the kept
// records validate after the start.
func TestStoreFileDamaged(t *testing.T) {
	up := gt.StartUpstream(t)
	dir := t.TempDir()
	g, tmpl := fileStoreGateway(t, up, dir)
	var toks []string
	for range 20 {
		toks = append(toks, svcToken(t, g))
	}
	// Check and repair refuse to touch a file a gateway has open.
	for _, sub := range []string{"check", "repair"} {
		out, code := storeCommand(t, sub, storePath(dir))
		if code == 0 || !strings.Contains(out, fmt.Sprintf("another process (PID %d)", gatewayPID(t, dir))) {
			t.Fatalf("%s while the gateway runs: status %d:\n%s", sub, code, out)
		}
	}
	g.Stop()

	path := storePath(dir)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The record of the tenth token (its key starts a line; its digest is
	// also the end of its index entry's key): its header overwritten.
	at := bytes.Index(orig, []byte("\nat:"+digest(toks[9])))
	if at < 0 {
		t.Fatal("the tenth token's record is not in the file")
	}
	start := bytes.LastIndex(orig[:at], []byte("\r\n*")) + 2
	damaged := bytes.Clone(orig)
	copy(damaged[start:], "XXXXXXXXXXXX")
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}

	out := startRefused(t, tmpl, dir)
	for _, want := range []string{"oauth file store", path, fmt.Sprintf("byte offset %d", start), "caddy oauth store repair " + path} {
		if !strings.Contains(out, want) {
			t.Errorf("the refused start's output lacks %q:\n%s", want, out)
		}
	}

	out, code := storeCommand(t, "check", path)
	if code != 1 || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, fmt.Sprintf("at byte %d:", start)) {
		t.Fatalf("check: status %d:\n%s", code, out)
	}
	out, code = storeCommand(t, "check", "--json", path)
	var rep struct {
		Records int  `json:"records"`
		Damaged bool `json:"damaged"`
		Damage  []struct {
			Offset int64 `json:"offset"`
		} `json:"damage"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || !rep.Damaged || len(rep.Damage) != 1 || rep.Damage[0].Offset != int64(start) {
		t.Fatalf("check --json: status %d, %v:\n%s", code, err, out)
	}

	out, code = storeCommand(t, "repair", "--json", path)
	var res struct {
		Kept    int    `json:"kept"`
		Dropped int    `json:"dropped"`
		MovedTo string `json:"moved_to"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Kept != rep.Records || res.Dropped != 1 {
		t.Fatalf("repair: status %d, %v, want %d kept and 1 dropped:\n%s", code, err, rep.Records, out)
	}
	if !strings.HasPrefix(res.MovedTo, path+".damaged-") {
		t.Fatalf("the original went to %q", res.MovedTo)
	}
	if kept, err := os.ReadFile(res.MovedTo); err != nil || !bytes.Equal(kept, damaged) {
		t.Fatalf("the original is not kept as it was: %v", err)
	}
	if out, code := storeCommand(t, "check", path); code != 0 || !strings.Contains(out, "sound") {
		t.Fatalf("check after repair: status %d:\n%s", code, out)
	}

	g.Restart()
	for i, tok := range toks {
		if i != 9 {
			wantValid(t, g, up, tok, "after the repair")
		}
	}
	if r := gt.Get(t, g.URL+"/api", toks[9]); r.Status != 401 {
		t.Fatalf("the token whose record was dropped got %d", r.Status)
	}
}

// TestStoreFileCrash: a gateway killed (SIGKILL) while issuing tokens loses
// none whose answer reached the client: each write is in the file before
// the answer goes out, and only the fsync waits (up to a second).
func TestStoreFileCrash(t *testing.T) {
	up := gt.StartUpstream(t)
	dir := t.TempDir()
	g, _ := fileStoreGateway(t, up, dir)
	pid := gatewayPID(t, dir)

	var (
		mu     sync.Mutex
		issued []string
		wg     sync.WaitGroup
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(issued) }
	// Each loader stops at its first failed request: the gateway is gone.
	// The request count is bounded in case it never goes.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20000 {
				tok, ok := issue(g.URL)
				if !ok {
					return
				}
				mu.Lock()
				issued = append(issued, tok)
				mu.Unlock()
			}
		}()
	}
	poll.Until(t, 60*time.Second, "300 tokens issued", func() bool { return count() >= 300 })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("%d tokens issued before the kill", count())

	g.Restart()
	for _, tok := range issued {
		wantValid(t, g, up, tok, "after the crash")
	}
}

// issue asks for a client_credentials token; ok is false when no token
// came back.
func issue(base string) (string, bool) {
	req, err := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return "", false
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", "svc-secret")
	resp, err := gt.HTTPClient.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&body) != nil || body.AccessToken == "" {
		return "", false
	}
	return body.AccessToken, true
}
