package caddyoauth

import (
	"net/http"
	"testing"
)

func TestFoldsToMatchesNormHeader(t *testing.T) {
	want := normHeader("X-User-ID")
	for _, key := range []string{"X-User-ID", "x-user-id", "X_User_ID", "X-USER_ID", "X-User-IDs", "X-User-I", "X-Üser-ID", "Y-User-ID", ""} {
		if got, exp := foldsTo(key, want), normHeader(key) == want; got != exp {
			t.Errorf("foldsTo(%q) = %v, normHeader comparison says %v", key, got, exp)
		}
	}
}

func TestStripHeadersDeletesEverySpelling(t *testing.T) {
	h := http.Header{"X-User-Id": {"a"}, "X_user_id": {"b"}, "X-User-Ids": {"keep"}, "Accept": {"keep"}}
	stripIdentity(&http.Request{Header: h}, []string{normHeader("X-User-ID")}, false)
	if len(h) != 2 || h.Get("X-User-Ids") != "keep" || h.Get("Accept") != "keep" {
		t.Fatalf("after stripIdentity: %v", h)
	}
}
