package caddyoauth

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestParseStoreSpec: the store names `caddy oauth store copy` takes, and
// a clear error for each bad one, never quoting a password.
func TestParseStoreSpec(t *testing.T) {
	abs, _ := filepath.Abs("oauth.db")
	t.Setenv("TEST_REDIS_PW", "pw-from-env")
	for _, tc := range []struct {
		spec, prefix string
		prefixGiven  bool
		wantDesc     string
		wantErr      string
	}{
		{spec: "file:/var/lib/oauth.db", wantDesc: "file store /var/lib/oauth.db"},
		{spec: "file:///var/lib/oauth.db", wantDesc: "file store /var/lib/oauth.db"},
		{spec: "file:oauth.db", wantDesc: "file store " + abs},
		{spec: "file:", wantErr: "needs the store file's path"},
		{spec: "file://host/x", wantErr: "file:///"},
		{spec: "file:/x", prefix: "p:", prefixGiven: true, wantErr: "Redis store only"},
		{spec: "redis://127.0.0.1:6379/0", wantDesc: "Redis store at 127.0.0.1:6379/0 (key prefix oauth:)"},
		{spec: "redis://127.0.0.1/2?prefix=gw:", wantDesc: "Redis store at 127.0.0.1:6379/2 (key prefix gw:)"},
		{spec: "redis://127.0.0.1:6379/0", prefix: "x:", prefixGiven: true, wantDesc: "(key prefix x:)"},
		{spec: "redis://:{env.TEST_REDIS_PW}@127.0.0.1:6379/0", wantDesc: "Redis store at 127.0.0.1:6379/0"},
		{spec: "redis://127.0.0.1/0?prefix=a:", prefix: "b:", prefixGiven: true, wantErr: "given twice"},
		{spec: "redis://127.0.0.1/0?prefix=a:&prefix=b:", wantErr: "given twice"},
		{spec: "redis://127.0.0.1/0?prefix=", wantErr: "must not be empty"},
		{spec: "redis://127.0.0.1/0", prefix: "", prefixGiven: true, wantErr: "must not be empty"},
		{spec: "redis://:s3cret@127.0.0.1/notadb", wantErr: "invalid"},
		{spec: "redis://:s3cret@127.0.0.1:port/0", wantErr: "invalid"},
		{spec: "/var/lib/oauth.db", wantErr: "file:<path> or a Redis URL"},
		{spec: "http://127.0.0.1", wantErr: "file:<path> or a Redis URL"},
		{spec: "", wantErr: "file:<path> or a Redis URL"},
	} {
		s, err := parseStoreSpec(tc.spec, tc.prefix, tc.prefixGiven, "--from-prefix")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err = %v, want one saying %q", tc.spec, err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pw-from-env")) {
				t.Errorf("%q: the error quotes the password: %v", tc.spec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if !strings.Contains(s.desc, tc.wantDesc) || strings.Contains(s.desc, "pw-from-env") {
			t.Errorf("%q: described as %q, want %q", tc.spec, s.desc, tc.wantDesc)
		}
	}
}

// TestStoreSpecOverlaps: copy refuses a target that is its source, or
// whose keys the source's walk would see.
func TestStoreSpecOverlaps(t *testing.T) {
	spec := func(s string) *storeSpec {
		t.Helper()
		p, err := parseStoreSpec(s, "", false, "--prefix")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"file:/a/oauth.db", "file:/a/oauth.db", true},
		{"file:/a/oauth.db", "file:/a/../a/oauth.db", true},
		{"file:/a/oauth.db", "file:/b/oauth.db", false},
		{"file:/a/oauth.db", "redis://127.0.0.1/0", false},
		{"redis://127.0.0.1/0", "redis://localhost:6380/0", false},
		{"redis://127.0.0.1/0", "redis://127.0.0.1/1", false},
		{"redis://127.0.0.1/0", "redis://u:p@127.0.0.1:6379/0", true},
		{"redis://127.0.0.1/0?prefix=a:", "redis://127.0.0.1/0?prefix=b:", false},
		{"redis://127.0.0.1/0?prefix=a:", "redis://127.0.0.1/0?prefix=a:k:", true},
	} {
		if got := spec(tc.a).overlaps(spec(tc.b)); got != tc.want {
			t.Errorf("%s and %s: overlaps = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
