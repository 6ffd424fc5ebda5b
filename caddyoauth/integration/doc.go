// Package integration drives the real gateway (cmd/caddy in its own
// process) over real HTTP, with real upstreams, stores and browsers.
package integration
