package clientdoc_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/clientdoc"
)

func TestCheckClientID(t *testing.T) {
	good := []string{
		"https://app.example.com/client.json", "https://app.example.com:8443/oauth/client",
		"https://app.example.com/c?v=1", "https://app.example.com/", "https://app.example.com/a/.well-known/x",
	}
	bad := []string{
		"http://app.example.com/client.json", "https://app.example.com", "https://app.example.com/c#frag",
		"https://app.example.com/c#", "https://user:pw@app.example.com/c", "https://user@app.example.com/c",
		"https://app.example.com/./c", "https://app.example.com/a/../c", "https://app.example.com/a/..",
		"https://app.example.com/%2e%2e/c", "https://app.example.com/%2E/c", "https://app.example.com/.",
		"https://app.example.com\\@evil.example/c", "https://app.example.com/a b", "https://2130706433/c",
		"https://0x7f.1/c", "https://127.1/c", "https://app.example.com/" + strings.Repeat("a", 2000), "https:///c",
		"HTTPS://app.example.com/c",
	}
	for _, id := range good {
		if err := clientdoc.CheckClientID(id); err != nil {
			t.Errorf("CheckClientID(%s) = %v, want nil", id, err)
		}
	}
	for _, id := range bad {
		if err := clientdoc.CheckClientID(id); err == nil {
			t.Errorf("CheckClientID(%.80s) accepted it", id)
		}
	}
}

const docID = "https://app.example.com/client.json"

func docJSON(fields string) string {
	return `{"client_id":"` + docID + `","client_name":"Example App","redirect_uris":["https://app.example.com/cb","http://127.0.0.1:3000/cb"]` + fields + `}`
}

var jsonHeader = http.Header{"Content-Type": {"application/json; charset=utf-8"}}

func TestParse(t *testing.T) {
	if _, err := clientdoc.Parse(docID, jsonHeader, []byte(docJSON(`,"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"scope":"read","logo_uri":"https://app.example.com/logo.png","client_uri":"https://app.example.com/"`))); err != nil {
		t.Fatalf("a good document: %v", err)
	}
	if _, err := clientdoc.Parse(docID, http.Header{"Content-Type": {"application/client-metadata+json"}}, []byte(docJSON(""))); err != nil {
		t.Fatalf("a +json media type: %v", err)
	}
	for name, tc := range map[string]struct {
		header http.Header
		body   string
	}{
		"served as text":           {http.Header{"Content-Type": {"text/html"}}, docJSON("")},
		"no content type":          {http.Header{}, docJSON("")},
		"not JSON":                 {jsonHeader, `<html>client</html>`},
		"a JSON array":             {jsonHeader, `[` + docJSON("") + `]`},
		"another client_id":        {jsonHeader, strings.Replace(docJSON(""), docID, "https://other.example.com/client.json", 1)},
		"client_id with a slash":   {jsonHeader, strings.Replace(docJSON(""), docID, docID+"/", 1)},
		"client_id with port 443":  {jsonHeader, strings.Replace(docJSON(""), docID, "https://app.example.com:443/client.json", 1)},
		"client_id in other case":  {jsonHeader, strings.Replace(docJSON(""), docID, "https://APP.example.com/client.json", 1)},
		"no client_id":             {jsonHeader, `{"redirect_uris":["https://app.example.com/cb"]}`},
		"client_secret_basic":      {jsonHeader, docJSON(`,"token_endpoint_auth_method":"client_secret_basic"`)},
		"client_secret_post":       {jsonHeader, docJSON(`,"token_endpoint_auth_method":"client_secret_post"`)},
		"client_secret_jwt":        {jsonHeader, docJSON(`,"token_endpoint_auth_method":"client_secret_jwt"`)},
		"private_key_jwt":          {jsonHeader, docJSON(`,"token_endpoint_auth_method":"private_key_jwt"`)},
		"a client_secret":          {jsonHeader, docJSON(`,"client_secret":"s3cret"`)},
		"a secret expiry":          {jsonHeader, docJSON(`,"client_secret_expires_at":0`)},
		"a private key":            {jsonHeader, docJSON(`,"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}`)},
		"no redirect_uris":         {jsonHeader, `{"client_id":"` + docID + `"}`},
		"a javascript: redirect":   {jsonHeader, `{"client_id":"` + docID + `","redirect_uris":["javascript:alert(1)"]}`},
		"a redirect with fragment": {jsonHeader, `{"client_id":"` + docID + `","redirect_uris":["https://app.example.com/cb#x"]}`},
		"an http redirect":         {jsonHeader, `{"client_id":"` + docID + `","redirect_uris":["http://app.example.com/cb"]}`},
		"no code response type":    {jsonHeader, docJSON(`,"response_types":["token"]`)},
		"no code grant":            {jsonHeader, docJSON(`,"grant_types":["client_credentials"]`)},
		"a malformed scope":        {jsonHeader, docJSON(`,"scope":"read  write"`)},
		"an http logo":             {jsonHeader, docJSON(`,"logo_uri":"http://app.example.com/logo.png"`)},
		"a javascript client_uri":  {jsonHeader, docJSON(`,"client_uri":"javascript:alert(1)"`)},
		"a control character name": {jsonHeader, strings.Replace(docJSON(""), "Example App", `Example\u0007App`, 1)},
	} {
		if _, err := clientdoc.Parse(docID, tc.header, []byte(tc.body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDocumentClient(t *testing.T) {
	d, err := clientdoc.Parse(docID, jsonHeader, []byte(docJSON(`,"grant_types":["authorization_code","refresh_token","client_credentials"],"scope":"read admin"`)))
	if err != nil {
		t.Fatal(err)
	}
	c := d.Client([]string{"read", "write"})
	if c.ID != docID || c.Name != "Example App" || !c.Public || !c.Unvetted || c.Host != "app.example.com" || c.UserID != "" {
		t.Fatalf("client %+v", c)
	}
	if !slices.Equal(c.Grants, []string{authz.GrantAuthorizationCode, authz.GrantRefreshToken}) {
		t.Fatalf("grants %v: only the code and refresh grants", c.Grants)
	}
	if !slices.Equal(c.Scopes, []string{"read"}) {
		t.Fatalf("scopes %v: the document's among the allowed", c.Scopes)
	}
	d, _ = clientdoc.Parse(docID, jsonHeader, []byte(`{"client_id":"`+docID+`","redirect_uris":["https://app.example.com/cb"]}`))
	c = d.Client([]string{"read", "write"})
	if c.Name != "app.example.com" || !slices.Equal(c.Scopes, []string{"read", "write"}) || !slices.Equal(c.Grants, []string{authz.GrantAuthorizationCode}) {
		t.Fatalf("a minimal document: %+v", c)
	}
}

func TestLifetime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		header map[string]string
		want   time.Duration
	}{
		{nil, clientdoc.DefaultCacheTTL},
		{map[string]string{"Cache-Control": "max-age=3600"}, time.Hour},
		{map[string]string{"Cache-Control": "public, max-age=7200", "Age": "3600"}, time.Hour},
		{map[string]string{"Cache-Control": "max-age=5"}, clientdoc.MinCacheTTL},
		{map[string]string{"Cache-Control": "max-age=0"}, clientdoc.MinCacheTTL},
		{map[string]string{"Cache-Control": "max-age=99999999999"}, clientdoc.MaxCacheTTL},
		{map[string]string{"Cache-Control": "max-age=junk"}, clientdoc.MinCacheTTL},
		{map[string]string{"Cache-Control": "no-store"}, clientdoc.MinCacheTTL},
		{map[string]string{"Cache-Control": "max-age=3600, no-cache"}, clientdoc.MinCacheTTL},
		{map[string]string{"Expires": now.Add(2 * time.Hour).Format(http.TimeFormat)}, 2 * time.Hour},
		{map[string]string{"Expires": now.Add(2 * time.Hour).Format(http.TimeFormat), "Date": now.Add(time.Hour).Format(http.TimeFormat)}, time.Hour},
		{map[string]string{"Expires": "0"}, clientdoc.MinCacheTTL},
		{map[string]string{"Expires": now.Add(-time.Hour).Format(http.TimeFormat)}, clientdoc.MinCacheTTL},
		{map[string]string{"Expires": now.Add(90 * 24 * time.Hour).Format(http.TimeFormat)}, clientdoc.MaxCacheTTL},
		{map[string]string{"Cache-Control": "max-age=600", "Expires": now.Add(2 * time.Hour).Format(http.TimeFormat)}, 10 * time.Minute},
	} {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		if got := clientdoc.Lifetime(h, now); got != tc.want {
			t.Errorf("Lifetime(%v) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// docServer serves client documents over https on loopback, counting the
// connections it accepts and the documents it serves.
type docServer struct {
	*httptest.Server
	conns, served atomic.Int32
	mu            sync.Mutex
	handler       http.HandlerFunc
}

func newDocServer(t *testing.T) *docServer {
	t.Helper()
	s := &docServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.served.Add(1)
		s.mu.Lock()
		h := s.handler
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
	s.serve(s.doc, http.Header{"Cache-Control": {"max-age=300"}})
	return s
}

// id is the client_id of the document at path on this server.
func (s *docServer) id(path string) string { return s.URL + path }

// doc is a valid document for the URL of r.
func (s *docServer) doc(r *http.Request) string {
	return fmt.Sprintf(`{"client_id":%q,"client_name":"Loopback App","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`, s.URL+r.URL.RequestURI())
}

func (s *docServer) serve(body func(*http.Request) string, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		fmt.Fprint(w, body(r))
	}
}

func (s *docServer) handle(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

func (s *docServer) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

// clock is a settable time for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func wantRefused(t *testing.T, what string, c *authz.Client, err error) *authz.ClientLookupError {
	t.Helper()
	var le *authz.ClientLookupError
	if c != nil || !errors.As(err, &le) || !errors.Is(err, authz.ErrUnknownClient) {
		t.Fatalf("%s: client %v, error %v; want a ClientLookupError", what, c, err)
	}
	return le
}

// TestResolverFetchesAndCaches: a document is fetched once, kept for its
// max-age, and fetched again after.
func TestResolverFetchesAndCaches(t *testing.T) {
	s := newDocServer(t)
	clk := &clock{now: time.Now()}
	r := clientdoc.New(clientdoc.Options{AllowPrivateAddresses: true, RootCAs: s.roots(), Scopes: []string{"read"}, Now: clk.Now})
	id := s.id("/client.json")
	for range 3 {
		c, err := r.Client(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != id || c.Name != "Loopback App" || !c.Unvetted || !c.Public || c.Host != strings.TrimPrefix(s.URL, "https://") || !slices.Equal(c.Scopes, []string{"read"}) {
			t.Fatalf("client %+v", c)
		}
	}
	if n := s.served.Load(); n != 1 {
		t.Fatalf("fetched %d times within max-age, want 1", n)
	}
	clk.add(301 * time.Second)
	if _, err := r.Client(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := s.served.Load(); n != 2 {
		t.Fatalf("fetched %d times after max-age, want 2", n)
	}
	// no-store: kept for the minimum only.
	s.serve(s.doc, http.Header{"Cache-Control": {"no-store"}})
	id2 := s.id("/other.json")
	r.Client(context.Background(), id2)
	clk.add(clientdoc.MinCacheTTL - time.Second)
	r.Client(context.Background(), id2)
	if n := s.served.Load(); n != 3 {
		t.Fatalf("fetched %d times, want 3", n)
	}
	clk.add(2 * time.Second)
	r.Client(context.Background(), id2)
	if n := s.served.Load(); n != 4 {
		t.Fatalf("fetched %d times after the minimum, want 4", n)
	}
}

// TestResolverRefusesPrivateAddresses: without allow_private_addresses a
// document on loopback, by address or by name, is never fetched.
func TestResolverRefusesPrivateAddresses(t *testing.T) {
	s := newDocServer(t)
	r := clientdoc.New(clientdoc.Options{RootCAs: s.roots()})
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]
	for _, id := range []string{
		s.id("/client.json"),
		"https://localhost:" + port + "/client.json",
		"https://[::1]:" + port + "/client.json",
		"https://[::ffff:127.0.0.1]:" + port + "/client.json",
		"https://169.254.169.254/latest/meta-data",
		"https://10.0.0.1/client.json",
	} {
		c, err := r.Client(context.Background(), id)
		le := wantRefused(t, id, c, err)
		if !strings.Contains(le.Reason, "not a public one") {
			t.Fatalf("%s: reason %q", id, le.Reason)
		}
	}
	if n := s.conns.Load(); n != 0 {
		t.Fatalf("the server accepted %d connections", n)
	}
}

// TestResolverRefusesBadDocuments: errors and invalid documents are
// refused, and not cached: the next lookup fetches again.
func TestResolverRefusesBadDocuments(t *testing.T) {
	s := newDocServer(t)
	r := clientdoc.New(clientdoc.Options{AllowPrivateAddresses: true, RootCAs: s.roots()})
	id := s.id("/client.json")
	cases := []struct {
		name   string
		h      http.HandlerFunc
		reason string
	}{
		{"a mismatched client_id", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, strings.Replace(s.doc(r), "client.json", "other.json", 1))
		}, "client_id is not its URL"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html></html>")
		}, "not served as JSON"},
		{"a 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "did not answer 200 OK"},
		{"a redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere.json", http.StatusFound)
		}, "redirect"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			doc := s.doc(r)
			fmt.Fprint(w, doc[:len(doc)-1]+`,"pad":"`+strings.Repeat("x", clientdoc.MaxDocumentBytes)+`"}`)
		}, "too large"},
		{"a shared secret", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, strings.Replace(s.doc(r), `"none"`, `"client_secret_basic"`, 1))
		}, "shared secret"},
	}
	for _, tc := range cases {
		s.handle(tc.h)
		before := s.served.Load()
		for range 2 {
			c, err := r.Client(context.Background(), id)
			le := wantRefused(t, tc.name, c, err)
			if !strings.Contains(le.Reason, tc.reason) {
				t.Fatalf("%s: reason %q, want it to say %q", tc.name, le.Reason, tc.reason)
			}
		}
		if n := s.served.Load() - before; n != 2 {
			t.Fatalf("%s: served %d times for two lookups; a refusal must not be cached", tc.name, n)
		}
	}
	// Fixed, it is accepted at once.
	s.serve(s.doc, nil)
	if _, err := r.Client(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// An id that breaks the URL rules is refused without a fetch.
	before := s.served.Load()
	for _, bad := range []string{s.URL, s.URL + "/a/../client.json", s.URL + "/client.json#x", strings.Replace(s.URL, "https", "http", 1) + "/client.json"} {
		c, err := r.Client(context.Background(), bad)
		wantRefused(t, bad, c, err)
	}
	if s.served.Load() != before {
		t.Fatal("an invalid client_id was fetched")
	}
}

// TestResolverFetchesOnceForConcurrentLookups: lookups of one URL while
// its fetch is under way, or after it, fetch nothing more.
func TestResolverFetchesOnceForConcurrentLookups(t *testing.T) {
	s := newDocServer(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	s.handle(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{} // a second fetch would block here
		<-release
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, s.doc(r))
	})
	r := clientdoc.New(clientdoc.Options{AllowPrivateAddresses: true, RootCAs: s.roots()})
	id := s.id("/client.json")
	errs := make(chan error, 5)
	lookup := func() { _, err := r.Client(context.Background(), id); errs <- err }
	go lookup()
	<-arrived // the first lookup's fetch is at the server
	for range 4 {
		go lookup()
	}
	close(release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := s.served.Load(); n != 1 {
		t.Fatalf("served %d times, want 1", n)
	}
}
