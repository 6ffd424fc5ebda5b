package safefetch_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/safefetch"
)

// server is an https test server on loopback that counts the connections
// it accepts and keeps the last request's headers.
type server struct {
	*httptest.Server
	conns atomic.Int32
	mu    sync.Mutex
	last  http.Header
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.last = r.Header.Clone()
		s.mu.Unlock()
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *server) port() string { return s.URL[strings.LastIndex(s.URL, ":")+1:] }

func (s *server) addrPort() netip.AddrPort {
	return netip.MustParseAddrPort(strings.TrimPrefix(s.URL, "https://"))
}

func (s *server) lastHeader() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func roots(servers ...*server) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, s := range servers {
		pool.AddCert(s.Certificate())
	}
	return pool
}

func serveJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}
}

func TestCheckAddr(t *testing.T) {
	public := []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"}
	// Private: refused unless private addresses are allowed.
	private := []string{
		"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "100.64.0.1", "100.127.255.254", "169.254.169.254", "192.0.0.8", "198.18.0.1",
		"192.0.2.1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fec0::1", "2001:db8::1", "2001::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "::8.8.8.8",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1", "2002:c0a8:101::1", "100::1",
	}
	// Never, even with private addresses allowed.
	never := []string{
		"0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
		"ff02::1", "ff05::2", "::ffff:0.0.0.0", "::ffff:224.0.0.1", "64:ff9b::e000:1",
	}
	for _, s := range public {
		a := netip.MustParseAddr(s)
		if err := safefetch.CheckAddr(a, false); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
	}
	for _, s := range private {
		a := netip.MustParseAddr(s)
		if err := safefetch.CheckAddr(a, false); !errors.Is(err, safefetch.ErrForbiddenAddress) {
			t.Errorf("CheckAddr(%s) = %v, want it refused", s, err)
		}
	}
	for _, s := range never {
		a := netip.MustParseAddr(s)
		for _, allow := range []bool{false, true} {
			if err := safefetch.CheckAddr(a, allow); !errors.Is(err, safefetch.ErrForbiddenAddress) {
				t.Errorf("CheckAddr(%s, allowPrivate=%v) = %v, want it refused", s, allow, err)
			}
		}
	}
	for _, s := range []string{"127.0.0.1", "::1", "10.0.0.1", "fe80::1", "fd00::1", "::ffff:127.0.0.1"} {
		if err := safefetch.CheckAddr(netip.MustParseAddr(s), true); err != nil {
			t.Errorf("CheckAddr(%s, allowPrivate) = %v, want nil", s, err)
		}
	}
	if err := safefetch.CheckAddr(netip.Addr{}, true); err == nil {
		t.Error("the zero Addr is accepted")
	}
}

func TestCheckURL(t *testing.T) {
	good := []string{
		"https://example.com/client", "https://example.com:8443/a/b", "https://8.8.8.8/x",
		"https://[2606:4700::1111]/x", "https://example.com./x", "https://x1.example.com/x",
	}
	bad := []string{
		"http://example.com/client", "ftp://example.com/x", "https:///x", "https:example.com",
		"https://user:pw@example.com/x", "https://user@example.com/x", "//example.com/x", "/x",
		// Numbers some resolvers read as IPv4 addresses.
		"https://2130706433/x", "https://0x7f000001/x", "https://0x7f.1/x", "https://127.1/x",
		"https://0177.0.0.1/x", "https://017700000001/x", "https://example.0x1/x", "https://a.123/x",
		"https://[fe80::1%25eth0]/x", "https://[::ffff:127.0.0.1%251]/x", "https://example.com:0/x",
		"https://example.com:99999/x",
	}
	for _, s := range good {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := safefetch.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%s) = %v, want nil", s, err)
		}
	}
	for _, s := range bad {
		u, err := url.Parse(s)
		if err != nil {
			continue // refused by the parser already
		}
		if err := safefetch.CheckURL(u); !errors.Is(err, safefetch.ErrBadURL) {
			t.Errorf("CheckURL(%s) = %v, want ErrBadURL", s, err)
		}
	}
}

// TestGetRefusesLoopbackAndPrivate: a URL whose host is, or resolves to, a
// loopback or private address is refused when connecting, before any
// byte reaches the server.
func TestGetRefusesLoopbackAndPrivate(t *testing.T) {
	s := newServer(t, serveJSON(`{}`))
	f := safefetch.New(safefetch.Options{RootCAs: roots(s), Timeout: 3 * time.Second})
	p := s.port()
	for _, target := range []string{
		"https://127.0.0.1:" + p + "/doc",
		"https://localhost:" + p + "/doc", // a DNS name resolving to loopback
		"https://127.0.0.2:" + p + "/doc",
		"https://[::1]:" + p + "/doc",
		"https://[::ffff:127.0.0.1]:" + p + "/doc",
		"https://[::ffff:7f00:1]:" + p + "/doc",
		"https://10.0.0.1:" + p + "/doc",
		"https://192.168.0.1:" + p + "/doc",
		"https://169.254.169.254:" + p + "/doc",
		"https://100.64.0.1:" + p + "/doc",
		"https://[fe80::1]:" + p + "/doc",
		"https://[fd00::1]:" + p + "/doc",
		"https://0.0.0.0:" + p + "/doc",
		"https://[::]:" + p + "/doc",
	} {
		_, _, err := f.Get(context.Background(), target)
		if !errors.Is(err, safefetch.ErrForbiddenAddress) {
			t.Errorf("Get(%s) = %v, want ErrForbiddenAddress", target, err)
		}
		if reason := safefetch.Reason(err); strings.Contains(reason, "127.") || strings.Contains(reason, "::") {
			t.Errorf("the reason %q names the address", reason)
		}
	}
	if n := s.conns.Load(); n != 0 {
		t.Fatalf("the server accepted %d connections", n)
	}
}

// TestGetRefusesNumericHosts: hosts in the numeric forms resolvers read
// as IPv4 addresses are refused before any lookup.
func TestGetRefusesNumericHosts(t *testing.T) {
	s := newServer(t, serveJSON(`{}`))
	f := safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: roots(s)})
	p := s.port()
	for _, host := range []string{"2130706433", "0x7f000001", "0x7f.0x0.0x0.0x1", "0177.0.0.1", "127.1", "017700000001"} {
		_, _, err := f.Get(context.Background(), "https://"+host+":"+p+"/doc")
		if !errors.Is(err, safefetch.ErrBadURL) {
			t.Errorf("host %s: %v, want ErrBadURL", host, err)
		}
	}
	if n := s.conns.Load(); n != 0 {
		t.Fatalf("the server accepted %d connections", n)
	}
}

func TestGetAllowPrivate(t *testing.T) {
	s := newServer(t, serveJSON(`{"ok":true}`))
	f := safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: roots(s)})
	h, body, err := f.Get(context.Background(), s.URL+"/doc")
	if err != nil || string(body) != `{"ok":true}` || h.Get("Content-Type") != "application/json" {
		t.Fatalf("Get = %q, %v", body, err)
	}
	// Over https only, even where private addresses are allowed.
	plain := httptest.NewServer(serveJSON(`{}`))
	defer plain.Close()
	if _, _, err := f.Get(context.Background(), plain.URL+"/doc"); !errors.Is(err, safefetch.ErrBadURL) {
		t.Fatalf("http URL: %v, want ErrBadURL", err)
	}
	// An untrusted certificate fails.
	other := safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: x509.NewCertPool()})
	if _, _, err := other.Get(context.Background(), s.URL+"/doc"); !errors.Is(err, safefetch.ErrTransport) {
		t.Fatalf("untrusted certificate: %v, want ErrTransport", err)
	}
}

// TestGetSendsNothingOfItsOwn: no cookie comes back, and no credentials
// or Referer are sent, on the first request or after a redirect.
func TestGetSendsNothingOfItsOwn(t *testing.T) {
	second := newServer(t, serveJSON(`{}`))
	first := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "track", Value: "1", Path: "/"})
		if r.URL.Path == "/hop" {
			http.Redirect(w, r, second.URL+"/doc", http.StatusFound)
			return
		}
		serveJSON(`{}`)(w, r)
	})
	f := safefetch.New(safefetch.WithExempt(safefetch.Options{MaxRedirects: 1, RootCAs: roots(first, second)},
		func(ap netip.AddrPort) bool { return ap == first.addrPort() || ap == second.addrPort() }))
	for range 2 {
		if _, _, err := f.Get(context.Background(), first.URL+"/doc"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"Cookie", "Authorization", "Referer"} {
			if v := first.lastHeader().Get(name); v != "" {
				t.Fatalf("the request carried %s: %q", name, v)
			}
		}
	}
	if _, _, err := f.Get(context.Background(), first.URL+"/hop"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Cookie", "Authorization", "Referer"} {
		if v := second.lastHeader().Get(name); v != "" {
			t.Fatalf("the redirected request carried %s: %q", name, v)
		}
	}
}

// TestGetRedirects: by default a redirect is not followed at all; where
// redirects are allowed, the next hop is checked like the first, so an
// allowed server cannot send the fetch to loopback or to http.
func TestGetRedirects(t *testing.T) {
	target := newServer(t, serveJSON(`{}`))
	var to atomic.Value
	first := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to.Load().(string), http.StatusFound)
	})
	exemptFirst := func(ap netip.AddrPort) bool { return ap == first.addrPort() }

	to.Store(target.URL + "/doc")
	f := safefetch.New(safefetch.WithExempt(safefetch.Options{RootCAs: roots(first, target)}, exemptFirst))
	if _, _, err := f.Get(context.Background(), first.URL+"/doc"); !errors.Is(err, safefetch.ErrRedirect) {
		t.Fatalf("redirect with none allowed: %v, want ErrRedirect", err)
	}

	follow := safefetch.New(safefetch.WithExempt(safefetch.Options{MaxRedirects: 3, RootCAs: roots(first, target)}, exemptFirst))
	for _, dest := range []string{
		target.URL + "/doc",
		"https://localhost:" + target.port() + "/doc",
		"https://[::ffff:127.0.0.1]:" + target.port() + "/doc",
	} {
		to.Store(dest)
		if _, _, err := follow.Get(context.Background(), first.URL+"/doc"); !errors.Is(err, safefetch.ErrForbiddenAddress) {
			t.Fatalf("redirect to %s: %v, want ErrForbiddenAddress", dest, err)
		}
	}
	plain := httptest.NewServer(serveJSON(`{}`))
	defer plain.Close()
	to.Store(plain.URL + "/doc")
	if _, _, err := follow.Get(context.Background(), first.URL+"/doc"); !errors.Is(err, safefetch.ErrBadURL) {
		t.Fatalf("redirect to http: %v, want ErrBadURL", err)
	}
	if n := target.conns.Load(); n != 0 {
		t.Fatalf("the redirect target accepted %d connections", n)
	}
	// A loop ends at the cap.
	to.Store(first.URL + "/again")
	if _, _, err := follow.Get(context.Background(), first.URL+"/doc"); !errors.Is(err, safefetch.ErrRedirect) {
		t.Fatalf("redirect loop: %v, want ErrRedirect", err)
	}
}

func TestGetOversizedBody(t *testing.T) {
	const limit = 1024
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/chunked" {
			// No Content-Length: the cap holds on what is read.
			for range limit + 1 {
				w.Write([]byte(" "))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Write([]byte(strings.Repeat(" ", limit+1)))
	})
	f := safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: roots(s), MaxBytes: limit})
	for _, path := range []string{"/length", "/chunked"} {
		if _, _, err := f.Get(context.Background(), s.URL+path); !errors.Is(err, safefetch.ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", path, err)
		}
	}
	exact := newServer(t, serveJSON(strings.Repeat(" ", limit)))
	f = safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: roots(exact), MaxBytes: limit})
	if _, body, err := f.Get(context.Background(), exact.URL+"/doc"); err != nil || len(body) != limit {
		t.Fatalf("a body of exactly the cap: %d bytes, %v", len(body), err)
	}
}

// TestGetSlowBody: a server that trickles its body forever is given up on
// at the time cap, and the connection is closed.
func TestGetSlowBody(t *testing.T) {
	gone := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(gone)
		w.Header().Set("Content-Type", "application/json")
		tick := time.NewTicker(20 * time.Millisecond) // the trickle
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				w.Write([]byte(" "))
				w.(http.Flusher).Flush()
			}
		}
	})
	const limit = 500 * time.Millisecond
	f := safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: roots(s), Timeout: limit})
	start := time.Now()
	_, _, err := f.Get(context.Background(), s.URL+"/doc")
	if !errors.Is(err, safefetch.ErrTimeout) {
		t.Fatalf("Get = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > limit+2*time.Second {
		t.Fatalf("Get gave up after %v, cap %v", d, limit)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server still sends: the connection was not closed")
	}
}

// TestGetSlowHeaders: a server that accepts and never answers is given up
// on at the time cap too.
func TestGetSlowHeaders(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	f := safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: roots(s), Timeout: 300 * time.Millisecond})
	if _, _, err := f.Get(context.Background(), s.URL+"/doc"); !errors.Is(err, safefetch.ErrTimeout) {
		t.Fatalf("Get = %v, want ErrTimeout", err)
	}
}

func TestGetStatus(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusNotFound) })
	f := safefetch.New(safefetch.Options{AllowPrivate: true, RootCAs: roots(s)})
	if _, _, err := f.Get(context.Background(), s.URL+"/doc"); !errors.Is(err, safefetch.ErrStatus) {
		t.Fatalf("404: %v, want ErrStatus", err)
	}
}
