// Command caddy is Caddy with its standard modules plus the OAuth2 gateway.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The OAuth2 gateway, with its stores.
	_ "github.com/caddyoauth/gateway/caddyoauth"
)

func main() {
	caddycmd.Main()
}
