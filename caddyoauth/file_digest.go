package caddyoauth

import (
	"crypto/sha256"
	"encoding/hex"
	"os"

	"github.com/caddyserver/caddy/v2"
)

// fileDigest returns the SHA-256 of the content of the file a config
// names (placeholders expanded as Provision expands them), or "" when it
// cannot be read where the config is adapted: Provision, which reads it
// again, reports that. Caddy reloads only a config whose JSON changed, so
// the adapter records the digest of a file the config reads to make an
// edit of that file a change of the config.
func fileDigest(path string) string {
	b, err := os.ReadFile(caddy.NewReplacer().ReplaceKnown(path, ""))
	if err != nil {
		return ""
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}
