package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Response is an HTTP answer read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any // the body decoded, when it is a JSON object
}

// Str returns a string field of the JSON body.
func (r *Response) Str(field string) string {
	s, _ := r.JSON[field].(string)
	return s
}

// Do sends req and reads the whole answer.
func Do(t testing.TB, req *http.Request) *Response {
	t.Helper()
	resp, err := HTTPClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	_ = json.Unmarshal(body, &out.JSON)
	return out
}

// PostForm posts a form; with clientID set it authenticates with HTTP Basic
// as RFC 6749 §2.3.1 describes.
func PostForm(t testing.TB, target string, clientID, secret string, form url.Values) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return Do(t, req)
}

// Get sends a GET with the given bearer token (none when empty) and extra
// headers as name, value pairs.
func Get(t testing.TB, target, token string, headers ...string) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return Do(t, req)
}

// BcryptHash hashes a password at bcrypt's minimum cost, to keep tests fast.
func BcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
