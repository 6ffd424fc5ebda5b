// Command caddy is Caddy with its standard modules plus the OAuth2 gateway.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The OAuth2 gateway and its stores.
	_ "github.com/caddyoauth/gateway/caddyoauth"
	_ "github.com/caddyoauth/gateway/caddyoauth/store/filestore"
)

func main() {
	caddycmd.Main()
}
