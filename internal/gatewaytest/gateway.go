// Package gatewaytest runs the real gateway for integration tests: the
// caddy binary of cmd/caddy, built once per test process, started as a
// separate process on free loopback ports with a Caddyfile, and driven over
// real HTTP. Processes make restarts, several instances and killed services
// possible, which one in-process Caddy cannot do.
package gatewaytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/caddyoauth/gateway/internal/poll"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of the gateway's caddy binary, building it on
// first use.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatewaytest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/caddy")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RepoRoot returns the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Params are what a Caddyfile template can use: {{.Addr}} is the gateway
// site's host:port, {{.Admin}} the admin endpoint's, {{.DataDir}} a folder
// private to the gateway, plus anything the test put in Vars.
type Params struct {
	Addr    string
	Port    int
	Admin   string
	DataDir string
	Vars    map[string]string
}

// Gateway is one running gateway process.
type Gateway struct {
	// URL is the gateway site's base URL, http://127.0.0.1:port.
	URL string
	// AdminURL is the admin endpoint's base URL.
	AdminURL string
	Params   Params

	t        testing.TB
	config   string
	cmd      *exec.Cmd
	exited   chan struct{}
	logMu    sync.Mutex
	logs     bytes.Buffer
	extraEnv []string
	envFuncs []func(Params) []string
	https    bool
}

// Option changes how Start runs the gateway.
type Option func(*Gateway)

// WithEnv adds environment variables (KEY=value) to the gateway process.
func WithEnv(kv ...string) Option { return func(g *Gateway) { g.extraEnv = append(g.extraEnv, kv...) } }

// WithEnvFunc adds environment variables computed from the gateway's
// Params once its ports are chosen, for a Caddyfile that takes its
// addresses from the environment.
func WithEnvFunc(f func(Params) []string) Option {
	return func(g *Gateway) { g.envFuncs = append(g.envFuncs, f) }
}

// WithVars sets Params.Vars for the template.
func WithVars(vars map[string]string) Option {
	return func(g *Gateway) { g.Params.Vars = vars }
}

// WithHTTPS is for a TLSConfig site: URL is https://, and Start waits
// until the site's certificate from the gateway's local CA is served.
func WithHTTPS() Option { return func(g *Gateway) { g.https = true } }

// WithDataDir makes the gateway use dir as its data folder, so two
// gateways (or one started twice) can share a file store.
func WithDataDir(dir string) Option { return func(g *Gateway) { g.Params.DataDir = dir } }

// Start runs the gateway with the Caddyfile template tmpl and waits until
// it serves. The process is stopped when the test ends.
func Start(t testing.TB, tmpl string, opts ...Option) *Gateway {
	t.Helper()
	g := &Gateway{t: t, Params: Params{DataDir: t.TempDir()}}
	for _, o := range opts {
		o(g)
	}
	g.config = filepath.Join(t.TempDir(), "Caddyfile")
	t.Cleanup(g.Stop)
	// GATEWAY_LOGS=1 prints the log of a failed test's gateway.
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("GATEWAY_LOGS") != "" {
			t.Logf("gateway log:\n%s", g.Logs())
		}
	})
	// A port FreePort found free can be taken by another process (other
	// test binaries run alongside) before the gateway binds it: the
	// gateway then exits, and Start tries again on new ports.
	for attempt := 1; ; attempt++ {
		port := FreePort(t)
		g.Params.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		g.Params.Port = port
		g.Params.Admin = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		if err := os.WriteFile(g.config, []byte(g.Render(tmpl)), 0o600); err != nil {
			t.Fatal(err)
		}
		g.URL = "http://" + g.Params.Addr
		if g.https {
			g.URL = "https://" + g.Params.Addr
		}
		g.AdminURL = "http://" + g.Params.Admin
		err := g.tryStart()
		if err == nil {
			return g
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			t.Fatal(err)
		}
	}
}

// Render fills a Caddyfile template with the gateway's Params.
func (g *Gateway) Render(tmpl string) string {
	g.t.Helper()
	var buf bytes.Buffer
	if err := template.Must(template.New("Caddyfile").Parse(tmpl)).Execute(&buf, g.Params); err != nil {
		g.t.Fatalf("Caddyfile template: %v", err)
	}
	return buf.String()
}

// Reload loads the Caddyfile template tmpl into the running gateway
// through the admin API and returns the API's answer. With force, an
// unchanged config is loaded again too (`caddy reload --force`), as after
// an edit of a file the config names.
func (g *Gateway) Reload(tmpl string, force bool) *Response {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.AdminURL+"/load", strings.NewReader(g.Render(tmpl)))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	if force {
		req.Header.Set("Cache-Control", "must-revalidate")
	}
	r := Do(g.t, req)
	g.Settle()
	return r
}

// Settle waits, after a reload, until the previous config's server has
// let go of the site's port. Caddy binds the new config's listener next
// to the old one (SO_REUSEPORT) and closes the old one after the load has
// returned; a connection the kernel queued on the old socket in between
// is reset. Idle connections to the old server are dropped too, so the
// next requests reach the new one.
func (g *Gateway) Settle() {
	g.t.Helper()
	poll.Until(g.t, 10*time.Second, "the previous config's listener to close", func() bool {
		return listeningSockets(g.Params.Port) <= 1
	})
	HTTPClient.CloseIdleConnections()
}

// listeningSockets counts the TCP sockets listening on port, in this
// network namespace.
func listeningSockets(port int) int {
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is HEXADDR:HEXPORT; state 0A is LISTEN.
			if len(f) > 3 && f[3] == "0A" && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
				n++
			}
		}
	}
	return n
}

// Config wraps a site block with the global options every test gateway
// needs: the admin endpoint, no automatic HTTPS, and the given oauth block
// (which may be empty).
func Config(oauthBlock, siteBody string) string {
	return `{
	admin {{.Admin}}
	auto_https off
	persist_config off
	grace_period 1ns
` + indent(oauthBlock) + `
}

http://{{.Addr}} {
` + indent(siteBody) + `
}
`
}

// TLSConfig is Config for a site served over TLS with a certificate from
// the gateway's local CA, on TCP (HTTP/1.1 and HTTP/2) and on UDP
// (HTTP/3) at the same port. Start it WithHTTPS; ClientTLS trusts its CA.
func TLSConfig(oauthBlock, siteBody string) string {
	return `{
	admin {{.Admin}}
	auto_https disable_redirects
	local_certs
	skip_install_trust
	persist_config off
	grace_period 1ns
` + indent(oauthBlock) + `
}

https://{{.Addr}} {
	tls internal
` + indent(siteBody) + `
}
`
}

// ClientTLS returns a client TLS config that trusts the gateway's local
// CA (TLSConfig sites), or nil before the CA exists.
func (g *Gateway) ClientTLS() *tls.Config {
	pem, err := os.ReadFile(filepath.Join(g.Params.DataDir, "caddy", "pki", "authorities", "local", "root.crt"))
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// serving reports whether the site accepts connections; for a TLS site,
// whether it completes a handshake with a certificate its CA signed.
func (g *Gateway) serving() bool {
	if !g.https {
		c, err := net.DialTimeout("tcp", g.Params.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	conf := g.ClientTLS()
	if conf == nil {
		return false
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 200 * time.Millisecond}, "tcp", g.Params.Addr, conf)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "\n")
}

func (g *Gateway) start() {
	g.t.Helper()
	if err := g.tryStart(); err != nil {
		g.t.Fatal(err)
	}
}

var errPortTaken = errors.New("a port of the gateway was taken")

// ready is what `caddy run` logs once every app has started, so its
// listeners are bound: a listener answering on the port could otherwise
// be another process's.
const ready = `"msg":"serving initial configuration"`

// tryStart runs the gateway process and waits until it has started.
func (g *Gateway) tryStart() error {
	bin := Binary(g.t)
	started := strings.Count(g.Logs(), ready)
	g.cmd = exec.Command(bin, "run", "--config", g.config, "--adapter", "caddyfile")
	g.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+g.Params.DataDir,
		"XDG_CONFIG_HOME="+g.Params.DataDir,
		"HOME="+g.Params.DataDir,
	)
	g.cmd.Env = append(g.cmd.Env, g.extraEnv...)
	for _, f := range g.envFuncs {
		g.cmd.Env = append(g.cmd.Env, f(g.Params)...)
	}
	g.cmd.Stdout = (*lockedWriter)(g)
	g.cmd.Stderr = (*lockedWriter)(g)
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("starting gateway: %v", err)
	}
	g.exited = make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(g.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-g.exited:
			logs := g.Logs()
			if strings.Contains(logs, "address already in use") {
				return fmt.Errorf("%w:\n%s", errPortTaken, logs)
			}
			return fmt.Errorf("gateway exited during start-up:\n%s", logs)
		default:
		}
		if strings.Count(g.Logs(), ready) > started && g.serving() {
			return nil
		}
		if time.Now().After(deadline) {
			g.Stop()
			return fmt.Errorf("gateway did not start on %s within 30s:\n%s", g.Params.Addr, g.Logs())
		}
		time.Sleep(20 * time.Millisecond) // polling for the start-up
	}
}

// Stop ends the gateway process and waits for it.
func (g *Gateway) Stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
		return
	default:
	}
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.exited
	}
}

// Restart stops the gateway and starts it again with the same config, data
// folder and ports.
func (g *Gateway) Restart() {
	g.t.Helper()
	g.Stop()
	g.start()
}

// Logs returns everything the gateway printed so far.
func (g *Gateway) Logs() string {
	g.logMu.Lock()
	defer g.logMu.Unlock()
	return g.logs.String()
}

type lockedWriter Gateway

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	return w.logs.Write(p)
}

// ValidateConfig runs `caddy validate` on a Caddyfile, or on a JSON config
// when path ends in .json, and returns its combined output and whether it
// succeeded.
func ValidateConfig(t testing.TB, path string) (string, bool) {
	t.Helper()
	args := []string{"validate", "--config", path}
	if !strings.HasSuffix(path, ".json") {
		args = append(args, "--adapter", "caddyfile")
	}
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// HTTPClient is a client that does not follow redirects, so tests see them.
var HTTPClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// RunRefused runs `caddy run` on a Caddyfile with dataDir as its data
// folder, wants the process to exit with a failure within a minute,
// without serving, and returns what it printed.
func RunRefused(t testing.TB, caddyfile, dataDir string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dataDir, "XDG_CONFIG_HOME="+dataDir, "HOME="+dataDir)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the gateway kept running:\n%s", out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the gateway exited with %v, want a failure:\n%s", err, out)
	}
	if strings.Contains(string(out), ready) {
		t.Fatalf("the gateway served before it exited:\n%s", out)
	}
	return string(out)
}
