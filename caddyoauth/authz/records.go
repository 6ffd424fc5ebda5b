package authz

import "strings"

// IsRoster reports whether key is one of the rosters every start writes by
// itself (roster:users, the users the config named at the last start): a
// store holding nothing else holds no tokens, sessions, consents or
// clients.
func IsRoster(key string) bool { return strings.HasPrefix(key, "roster:") }
