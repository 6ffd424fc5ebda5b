package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	gt "github.com/caddyoauth/gateway/internal/gatewaytest"
)

// TestStoreFileIsPrivate: the gateway creates its store file readable by
// its owner only under the usual umask, and warns at start about an
// existing store file other users can read.
func TestStoreFileIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // inherited by the gateway process
	t.Cleanup(func() { syscall.Umask(old) })
	cfg := gt.Config(`
oauth {
	store `+fileStore+`
}`, `oauth_server
respond "ok"`)
	g := gt.Start(t, cfg)
	path := filepath.Join(g.Params.DataDir, "tokens.db")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("the new store file has mode %#o, want 0600", fi.Mode().Perm())
	}
	const warning = "the token store file can be read or written by other users"
	if strings.Contains(g.Logs(), warning) {
		t.Fatal("a private store file was warned about")
	}

	g.Stop()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	g2 := gt.Start(t, cfg, gt.WithDataDir(g.Params.DataDir))
	if !strings.Contains(g2.Logs(), warning) || !strings.Contains(g2.Logs(), `"mode":"0644"`) {
		t.Fatalf("no warning about a store file other users can read:\n%s", g2.Logs())
	}
}
