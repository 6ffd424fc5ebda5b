package integration

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// identityOAuth has one client whose tokens carry a user.
const identityOAuth = `
oauth {
	store memory
	rate_limit off
	client reader {
		secret reader-secret
		grants client_credentials
		scopes read
		user reader-1
	}
}`

// identitySite proxies every route to the upstream %[1]s: the default
// route needs a token, /custom/* names its user header X-Remote-User,
// /optional/* lets a request without a token through, /fwd/* forwards the
// token, and /public/* has no oauth_protect (oauth_server passes it on).
const identitySite = `
oauth_server
handle /public/* {
	reverse_proxy %[1]s
}
handle /optional/* {
	oauth_protect {
		optional
	}
	reverse_proxy %[1]s
}
handle /fwd/* {
	oauth_protect {
		forward_token
	}
	reverse_proxy %[1]s
}
handle /custom/* {
	oauth_protect {
		user_header X-Remote-User
	}
	reverse_proxy %[1]s
}
handle {
	oauth_protect
	reverse_proxy %[1]s
}`

// identityVariant is one way a caller tries to remove, replace or add to
// the identity the gateway asserts: hop-by-hop Connection options naming
// the identity headers, and identity fields sent as trailers.
type identityVariant struct {
	name    string
	header  []gt.Field
	trailer []gt.Field
	// hop is a field the variant lists in Connection: the gateway must
	// still drop it, as RFC 9110 §7.6.1 asks.
	hop string
	// h1Only: HTTP/2 and HTTP/3 forbid these fields (Connection, RFC 9113
	// §8.2.2 and RFC 9114 §4.2; Authorization as a trailer, which Go's and
	// quic-go's servers refuse), so there the request may be refused.
	h1Only bool
}

// fields makes fields of name, value pairs.
func fields(pairs ...string) []gt.Field {
	var out []gt.Field
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, gt.Field{Name: pairs[i], Value: pairs[i+1]})
	}
	return out
}

var identityVariants = []identityVariant{
	{name: "connection names the user", header: fields("Connection", "keep-alive, X-User-ID"), h1Only: true},
	{name: "connection names scope and client", header: fields("Connection", "X-OAuth-Scope, X-OAuth-Client-ID"), h1Only: true},
	{name: "connection in other cases", header: fields("connection", "x-user-id", "CONNECTION", "X-OAUTH-SCOPE"), h1Only: true},
	{name: "connection with spaces and empty elements", header: fields("Connection", " ,\t X-User-ID \t, ,X-OAuth-Client-ID,"), h1Only: true},
	{name: "repeated connection lines", header: fields("Connection", "keep-alive", "Connection", "X-User-ID", "Connection", "close, X-OAuth-Scope"), h1Only: true},
	{name: "connection with underscores", header: fields("Connection", "X_User_ID, x_oauth_scope, X_Remote_User"), h1Only: true},
	{name: "connection names the configured user header", header: fields("Connection", "X-Remote-User"), h1Only: true},
	{name: "connection names the forwarded token", header: fields("Connection", "Authorization"), h1Only: true},
	{name: "connection still drops other fields", header: fields("Connection", "X-Hop, X-User-ID", "X-Hop", "1"), hop: "X-Hop", h1Only: true},
	{name: "forged headers and connection", header: fields("X-User-ID", "admin", "X_User_ID", "admin", "Connection", "X-User-ID, X-Remote-User"), h1Only: true},
	{name: "forged identity headers", header: fields("X-User-ID", "admin", "x_user_id", "admin", "X-OAuth-Scope", "admin",
		"X-Remote-User", "admin", "x-oauth-client-id", "forged")},
	{name: "declared identity trailers", header: fields("Trailer", "X-User-ID, X-OAuth-Scope"),
		trailer: fields("X-User-ID", "admin", "X-OAuth-Scope", "admin")},
	{name: "identity trailers beside a declared one", header: fields("Trailer", "X-Other"),
		trailer: fields("X-Other", "1", "X-User-ID", "admin", "x_oauth_client_id", "forged")},
	{name: "undeclared identity trailers", trailer: fields("X-User-ID", "admin", "X-OAuth-Scope", "admin")},
	{name: "identity trailers in other spellings", header: fields("Trailer", "x_user_id", "Trailer", "X-REMOTE-USER"),
		trailer: fields("x_user_id", "admin", "X-REMOTE-USER", "admin")},
	{name: "authorization trailer", header: fields("Trailer", "Authorization"),
		trailer: fields("Authorization", "Bearer forged"), h1Only: true},
	{name: "connection and trailers", header: fields("Connection", "X-User-ID", "Trailer", "X-User-ID, X-Other"),
		trailer: fields("X-User-ID", "admin", "X-Other", "1"), h1Only: true},
}

// identityRoute is a route and the identity the upstream must receive on it.
type identityRoute struct {
	path      string
	token     bool
	protected bool
	want      map[string]string // folded header name: value
	fwdToken  bool
}

var readerIdentity = map[string]string{"x-user-id": "reader-1", "x-oauth-client-id": "reader", "x-oauth-scope": "read"}

var identityRoutes = []identityRoute{
	{path: "/api/items", token: true, protected: true, want: readerIdentity},
	{path: "/custom/items", token: true, protected: true, want: map[string]string{"x-remote-user": "reader-1", "x-oauth-client-id": "reader", "x-oauth-scope": "read"}},
	{path: "/fwd/items", token: true, protected: true, want: readerIdentity, fwdToken: true},
	{path: "/optional/items", token: true, protected: true, want: readerIdentity},
	{path: "/optional/anonymous", protected: true, want: map[string]string{}},
	{path: "/public/items", want: map[string]string{}},
}

var identityNames = []string{"x-user-id", "x-remote-user", "x-oauth-client-id", "x-oauth-scope"}

type sendFunc func(t testing.TB, addr string, tlsConf *tls.Config, req gt.RawRequest) (int, error)

// runIdentityVariants sends every variant to every route and checks what
// the upstream received. mayRefuse says whether the protocol may refuse
// the h1Only variants (HTTP/2 and HTTP/3 do) rather than pass them on.
// With trailersArrive, a declared trailer of another name must reach the
// upstream.
func runIdentityVariants(t *testing.T, g *gt.Gateway, up *gt.RawUpstream, send sendFunc, tlsConf *tls.Config, trailersArrive, mayRefuse bool) {
	token := identityToken(t, g)
	for _, v := range identityVariants {
		for _, rt := range identityRoutes {
			t.Run(v.name+" "+rt.path, func(t *testing.T) {
				req := gt.RawRequest{Method: http.MethodGet, Path: rt.path, Header: append(fields("X-Keep", "1"), v.header...)}
				if rt.token {
					req.Header = append(req.Header, gt.Field{Name: "Authorization", Value: "Bearer " + token})
				}
				if len(v.trailer) > 0 {
					req.Method, req.Body, req.Trailer = http.MethodPost, "payload", v.trailer
				}
				before := up.Count()
				status, err := send(t, g.Params.Addr, tlsConf, req)
				if status != http.StatusOK || err != nil {
					if !mayRefuse || !v.h1Only || (err != nil && !errors.Is(err, gt.ErrRefused)) {
						t.Fatalf("got %d %v", status, err)
					}
					if up.Count() != before {
						t.Fatalf("a refused request (%d %v) reached the upstream", status, err)
					}
					return
				}
				if up.Count() != before+1 {
					t.Fatalf("the upstream received %d requests, want 1", up.Count()-before)
				}
				checkReceived(t, up.Requests()[before], rt, v, token, trailersArrive)
			})
		}
	}
}

func checkReceived(t *testing.T, rec gt.Received, rt identityRoute, v identityVariant, token string, trailersArrive bool) {
	t.Helper()
	isIdentity := func(n string) bool { return slices.Contains(identityNames, normalized(n)) }
	got := map[string][]string{}
	for _, l := range rec.Header {
		name, value, _ := strings.Cut(l, ":")
		if isIdentity(name) {
			got[normalized(name)] = append(got[normalized(name)], strings.TrimSpace(value))
		}
	}
	want := map[string][]string{}
	for k, v := range rt.want {
		want[k] = []string{v}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("upstream identity headers %v, want %v\nheader: %q", got, want, rec.Header)
	}
	if f := gt.Fields(rec.Trailer, isIdentity); len(f) > 0 {
		t.Errorf("upstream received identity trailers %q", rec.Trailer)
	}
	for _, decl := range gt.Fields(rec.Header, func(n string) bool { return strings.EqualFold(n, "Trailer") }) {
		for _, name := range strings.Split(decl, ",") {
			name = strings.TrimSpace(name)
			if isIdentity(name) || rt.protected && strings.EqualFold(name, "Authorization") {
				t.Errorf("upstream Trailer header declares %q", decl)
			}
		}
	}
	isAuthz := func(n string) bool { return strings.EqualFold(n, "Authorization") }
	if rt.protected {
		if f := gt.Fields(rec.Trailer, isAuthz); len(f) > 0 {
			t.Errorf("upstream received an Authorization trailer")
		}
	}
	wantAuthz := []string(nil)
	if rt.fwdToken {
		wantAuthz = []string{"Bearer " + token}
	}
	if a := gt.Fields(rec.Header, isAuthz); !slices.Equal(a, wantAuthz) && rt.protected {
		t.Errorf("upstream Authorization headers: %d, want %d", len(a), len(wantAuthz))
	}
	if k := gt.Fields(rec.Header, func(n string) bool { return strings.EqualFold(n, "X-Keep") }); !slices.Equal(k, []string{"1"}) {
		t.Errorf("upstream X-Keep %q, want [1]", k)
	}
	if v.hop != "" {
		if h := gt.Fields(rec.Header, func(n string) bool { return strings.EqualFold(n, v.hop) }); len(h) > 0 {
			t.Errorf("upstream received %s, which Connection named", v.hop)
		}
	}
	if trailersArrive && slices.ContainsFunc(v.header, func(f gt.Field) bool { return strings.Contains(f.Value, "X-Other") }) {
		if o := gt.Fields(rec.Trailer, func(n string) bool { return strings.EqualFold(n, "X-Other") }); !slices.Equal(o, []string{"1"}) {
			t.Errorf("upstream trailer X-Other %q, want [1]; trailer %q", o, rec.Trailer)
		}
	}
	if v.trailer != nil && string(rec.Body) != "payload" {
		t.Errorf("upstream body %q", rec.Body)
	}
}

// identityToken gets a token of the reader client over the gateway's own
// scheme.
func identityToken(t *testing.T, g *gt.Gateway) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: g.ClientTLS()}}
	defer c.CloseIdleConnections()
	resp, err := c.PostForm(g.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"reader"}, "client_secret": {"reader-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// TestIdentityHeadersHTTP1: over HTTP/1.1, written byte by byte, no
// Connection option and no trailer removes, replaces or adds to the
// identity the upstream receives, on protected, optional and public routes.
func TestIdentityHeadersHTTP1(t *testing.T) {
	up := gt.StartRawUpstream(t)
	g := gt.Start(t, gt.Config(identityOAuth, fmt.Sprintf(identitySite, up.Addr())))
	runIdentityVariants(t, g, up, gt.SendHTTP1, nil, true, false)
}

// TestIdentityHeadersHTTP2: the same over HTTP/2 on a TLS site. HTTP/2
// forbids Connection, so those variants may be refused, but never reach
// the upstream with a different identity.
func TestIdentityHeadersHTTP2(t *testing.T) {
	up := gt.StartRawUpstream(t)
	g := gt.Start(t, gt.TLSConfig(identityOAuth, fmt.Sprintf(identitySite, up.Addr())), gt.WithHTTPS())
	runIdentityVariants(t, g, up, gt.SendHTTP2, g.ClientTLS(), true, true)
}

// TestIdentityHeadersHTTP3: the same over HTTP/3. quic-go sets request
// trailers on its own copy of the request, so none reach the upstream, but
// a declaration still would.
func TestIdentityHeadersHTTP3(t *testing.T) {
	up := gt.StartRawUpstream(t)
	g := gt.Start(t, gt.TLSConfig(identityOAuth, fmt.Sprintf(identitySite, up.Addr())), gt.WithHTTPS())
	runIdentityVariants(t, g, up, gt.SendHTTP3, g.ClientTLS(), false, true)
}
