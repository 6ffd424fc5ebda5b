package limits

import "strings"

// IsCounter reports whether key is a record of the rate limits or the
// login lockout (rl:, lo:): short-lived counters that come and go with
// requests, which a store restore does not count as the store's content.
func IsCounter(key string) bool {
	return strings.HasPrefix(key, "rl:") || strings.HasPrefix(key, "lo:")
}
