package caddyoauth

import (
	"net/http"
	"slices"
	"testing"
)

func TestStripHeaders(t *testing.T) {
	names := []string{normHeader(DefaultUserHeader), normHeader("X-Tenant")}
	// Keys as they arrive: canonical, raw (HTTP/2 lower case, or set
	// directly in the map), and with underscores.
	h := http.Header{
		"X-User-Id":     {"a", "b"},
		"x-user-id":     {"c"},
		"X_User_ID":     {"d"},
		"X_USER-id":     {"e"},
		"X-Tenant":      {"f"},
		"x_tenant":      {"g"},
		"X-User-Idx":    {"keep"},
		"X-Userid":      {"keep"},
		"Authorization": {"keep"},
		"A":             {"keep"},
	}
	stripHeaders(h, names)
	var left []string
	for k := range h {
		left = append(left, k)
	}
	slices.Sort(left)
	want := []string{"A", "Authorization", "X-User-Idx", "X-Userid"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}

func TestNormHeader(t *testing.T) {
	for in, want := range map[string]string{"X-User-ID": "x-user-id", "x_user_id": "x-user-id", "X_USER-Id": "x-user-id"} {
		if got := normHeader(in); got != want {
			t.Errorf("normHeader(%q) = %q, want %q", in, got, want)
		}
	}
}
