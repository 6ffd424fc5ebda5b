package authz

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// unvettedAuthorizer serves one unvetted public client, as a client ID
// metadata document describes, and the vetted test clients.
func unvettedAuthorizer(t *testing.T) (*Authorizer, *Client) {
	t.Helper()
	clients := testClients()
	doc := &Client{ID: "https://agent.example.com/client.json", Name: "Agent", Public: true,
		Grants: []string{GrantAuthorizationCode}, Scopes: []string{"read"},
		RedirectURIs: []string{"https://agent.example.com/cb", "http://127.0.0.1:9/cb"},
		Unvetted:     true, Host: "agent.example.com"}
	clients[doc.ID] = doc
	svc := New(testConfig(), memStore(t), clients, testUsers(t), nil)
	return svc.NewAuthorizer(AuthorizeConfig{}), doc
}

// TestUnvettedConsentHoldsForItsRedirectURI: a remembered consent to an
// unvetted client applies to the redirect URI it was given for only.
func TestUnvettedConsentHoldsForItsRedirectURI(t *testing.T) {
	a, doc := unvettedAuthorizer(t)
	ctx := context.Background()
	first := &pendingRequest{ClientID: doc.ID, RedirectURI: doc.RedirectURIs[0], Scope: "read"}
	other := &pendingRequest{ClientID: doc.ID, RedirectURI: doc.RedirectURIs[1], Scope: "read"}
	if err := a.rememberConsent(ctx, "user-1", doc, first.RedirectURI, first.Scope); err != nil {
		t.Fatal(err)
	}
	if ask, err := a.needsConsent(ctx, doc, "user-1", first); err != nil || ask {
		t.Fatalf("same redirect URI: ask %v, %v; want the consent remembered", ask, err)
	}
	if ask, err := a.needsConsent(ctx, doc, "user-1", other); err != nil || !ask {
		t.Fatalf("another redirect URI: ask %v, %v; want the person asked again", ask, err)
	}
}

// TestUnvettedInvalidRequestIsNotRedirected: an invalid authorization
// request of an unvetted client is an error page, not a redirect to a
// URI nobody checked.
func TestUnvettedInvalidRequestIsNotRedirected(t *testing.T) {
	a, doc := unvettedAuthorizer(t)
	w := authorizeGET(a, "client_id="+doc.ID+"&redirect_uri="+doc.RedirectURIs[0]+"&response_type=token")
	if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "unsupported_response_type") {
		t.Fatalf("got %d, Location %q", w.Code, w.Header().Get("Location"))
	}
}

// TestClientLookupErrorIsShown: the reason a client could not be had is
// shown on the error page, and the request is not redirected.
func TestClientLookupErrorIsShown(t *testing.T) {
	svc := New(testConfig(), memStore(t), lookupFails{}, testUsers(t), nil)
	a := svc.NewAuthorizer(AuthorizeConfig{})
	w := authorizeGET(a, "client_id=https://agent.example.com/c&redirect_uri=https://agent.example.com/cb&response_type=code")
	if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "the document is gone") {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
}

type lookupFails struct{}

func (lookupFails) Client(context.Context, string) (*Client, error) {
	return nil, &ClientLookupError{Reason: "the document is gone"}
}
