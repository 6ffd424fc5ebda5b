package integration

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// mcpUpstream is an MCP server built with the official Go SDK: its one
// tool, whoami, answers with the X-User-ID the gateway handed it.
func mcpUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "legacy-api", Version: "1.0.0"}, nil)
	type none struct{}
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "the user the gateway signed in"},
		func(_ context.Context, req *mcp.CallToolRequest, _ none) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: req.Extra.Header.Get("X-User-ID")}}}, nil, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(srv.Close)
	return srv
}

// mcpCallback is the MCP client's loopback redirect URI: it hands each
// authorization response it receives to the waiting fetcher.
type mcpCallback struct {
	srv       *httptest.Server
	responses chan url.Values
}

func newMCPCallback(t *testing.T) *mcpCallback {
	t.Helper()
	c := &mcpCallback{responses: make(chan url.Values, 4)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		c.responses <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Connected</title><h1 id="done">Connected</h1><p>%s</p></html>`,
			html.EscapeString(r.URL.Query().Get("state")))
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *mcpCallback) url() string { return c.srv.URL + "/callback" }

// mcpClientDocument serves a client ID metadata document over https from
// a local server whose certificate the gateway trusts through
// SSL_CERT_FILE; it returns the document's URL (the client_id) and that
// environment variable.
func mcpClientDocument(t *testing.T, redirectURI string) (clientID, certEnv string) {
	t.Helper()
	var self string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/agents/desk.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  self,
			"client_name":                "Desk Agent",
			"redirect_uris":              []string{redirectURI},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}))
	t.Cleanup(srv.Close)
	self = srv.URL + "/agents/desk.json"
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return self, "SSL_CERT_FILE=" + file
}

// mcpGateway fronts the MCP server at /mcp of two sites sharing one
// authorization server: 127.0.0.1 (the resource its clients ask for) and
// localhost, a second resource on the same port.
func mcpGateway(t *testing.T, upstream, redirectURI, certEnv string) *gt.Gateway {
	t.Helper()
	tmpl := `{
	admin {{.Admin}}
	auto_https off
	persist_config off
	grace_period 1ns
	oauth {
		store memory
		issuer http://{{.Addr}}
		user alice ` + gt.BcryptHash(t, "alice-pw") + ` u-alice
		client mcp-desktop {
			name "Desktop Assistant"
			public
			redirect_uri ` + redirectURI + `
			grants authorization_code refresh_token
			scopes mcp
		}
		client inspector {
			secret inspector-secret
			grants client_credentials
			scopes mcp
			introspect
		}
		dynamic_clients {
			registration open
			metadata_documents on
			allow_private_addresses
			scopes mcp
		}
	}
}

http://{{.Addr}} {
	oauth_server
	handle /mcp* {
		oauth_protect {
			resource http://{{.Addr}}/mcp
			scope mcp
		}
		reverse_proxy ` + upstream + `
	}
}

http://localhost:{{.Port}} {
	handle /mcp* {
		oauth_protect {
			resource http://localhost:{{.Port}}/mcp
			scope mcp
		}
		reverse_proxy ` + upstream + `
	}
}
`
	return gt.Start(t, tmpl, gt.WithEnv(certEnv))
}

// notVetted is what the consent page says of a client nobody vetted.
const notVetted = "not verified by the operator"

// chromiumFetcher signs alice in and approves the request in Chromium, on
// the gateway's own pages, and returns what reached the redirect URI. The
// consent page must contain each of consentWants.
func chromiumFetcher(t *testing.T, cb *mcpCallback, consentWants ...string) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		b := startChromium(t, 1000, 800, 90*time.Second)
		if err := chromedp.Do(b,
			chromedp.Navigate(args.URL),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), "alice"),
			chromedp.SendKeys(chromedp.ID("password"), "alice-pw"),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)),
		); err != nil {
			return nil, fmt.Errorf("sign-in in Chromium: %w", err)
		}
		page, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(`body`)))
		if err != nil {
			return nil, err
		}
		for _, want := range consentWants {
			if !strings.Contains(page, want) {
				return nil, fmt.Errorf("the consent page does not say %q:\n%s", want, page)
			}
		}
		if vetted := !slices.Contains(consentWants, notVetted); vetted && strings.Contains(page, notVetted) {
			return nil, fmt.Errorf("the consent page of a client the operator configured says %q", notVetted)
		}
		if err := chromedp.Do(b,
			chromedp.Click(chromedp.CSS(`button[value=allow]`)),
			chromedp.WaitVisible(chromedp.ID("done")),
		); err != nil {
			return nil, fmt.Errorf("consent in Chromium: %w", err)
		}
		select {
		case q := <-cb.responses:
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization error %s", e)
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TestMCPClientsThroughTheGateway: the official Go MCP SDK's client finds
// its way from a bare 401 to a token three ways (a pre-registered client,
// dynamic registration, a client ID metadata document served over https),
// signs alice in through the real sign-in and consent pages in Chromium,
// and calls a tool of an MCP server built with the same SDK, which sees
// alice's X-User-ID. The token's audience is the resource the client
// asked for, and a second protected site with another resource refuses it.
func TestMCPClientsThroughTheGateway(t *testing.T) {
	up := mcpUpstream(t)
	cb := newMCPCallback(t)
	docID, certEnv := mcpClientDocument(t, cb.url())
	g := mcpGateway(t, up.URL, cb.url(), certEnv)
	resource := g.URL + "/mcp"
	docHost := strings.TrimPrefix(strings.SplitN(docID, "/agents", 2)[0], "https://")

	ways := []struct {
		name         string
		config       auth.AuthorizationCodeHandlerConfig
		consentWants []string
	}{
		{"pre-registered", auth.AuthorizationCodeHandlerConfig{
			PreregisteredClient: &oauthex.ClientCredentials{ClientID: "mcp-desktop"},
		}, []string{"Desktop Assistant"}},
		{"dynamic registration", auth.AuthorizationCodeHandlerConfig{
			DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
				ClientName:              "Research Agent",
				RedirectURIs:            []string{cb.url()},
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "none",
			}},
		}, []string{"Research Agent", notVetted}},
		{"client ID metadata document", auth.AuthorizationCodeHandlerConfig{
			ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: docID},
		}, []string{"Desk Agent", docHost, notVetted}},
	}
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			cfg := way.config
			cfg.RedirectURL = cb.url()
			cfg.AuthorizationCodeFetcher = chromiumFetcher(t, cb, way.consentWants...)
			handler, err := auth.NewAuthorizationCodeHandler(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1.0.0"}, nil)
			session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: resource, OAuthHandler: handler}, nil)
			if err != nil {
				t.Fatalf("connect through the gateway: %v", err)
			}
			defer session.Close()
			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
			if err != nil {
				t.Fatalf("call whoami: %v", err)
			}
			if len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "u-alice" {
				t.Fatalf("the tool saw X-User-ID %+v, want u-alice", res.Content)
			}

			ts, err := handler.TokenSource(ctx)
			if err != nil || ts == nil {
				t.Fatalf("token source: %v", err)
			}
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			in := gt.PostForm(t, g.URL+"/oauth/introspect", "inspector", "inspector-secret", url.Values{"token": {tok.AccessToken}})
			if in.Status != 200 || in.JSON["active"] != true || !audienceIs(in.JSON["aud"], resource) {
				t.Fatalf("introspection of the agent's token: %d %s, want active with aud %s", in.Status, in.Body, resource)
			}
			other := fmt.Sprintf("http://localhost:%d/mcp", g.Params.Port)
			r := gt.Get(t, other, tok.AccessToken)
			if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("the token at a site with another resource: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// audienceIs reports whether an introspection or JWT aud (a string or a
// list) is exactly want.
func audienceIs(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return len(a) == 1 && a[0] == want
	}
	return false
}
