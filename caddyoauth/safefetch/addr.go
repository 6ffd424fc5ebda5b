package safefetch

import (
	"errors"
	"net/netip"
)

// ErrForbiddenAddress: the host resolves to an address the gateway does
// not fetch from.
var ErrForbiddenAddress = errors.New("the host's address is not a public one")

// Special-use blocks (RFC 6890 and its updates) that are not reachable on
// the public Internet: refused unless private addresses are allowed.
var privateV4 = prefixes(
	"10.0.0.0/8",      // RFC 1918
	"100.64.0.0/10",   // carrier-grade NAT, RFC 6598
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local
	"172.16.0.0/12",   // RFC 1918
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"192.88.99.0/24",  // 6to4 relay anycast
	"192.168.0.0/16",  // RFC 1918
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
)

// Never fetched from, even with private addresses allowed: "this network"
// (0.0.0.0 reaches the host itself), multicast, reserved and broadcast.
var neverV4 = prefixes("0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")

var privateV6 = prefixes(
	"100::/64",       // discard
	"2001::/23",      // IETF protocol assignments, Teredo among them
	"2001:db8::/32",  // documentation
	"3fff::/20",      // documentation
	"5f00::/16",      // segment routing
	"64:ff9b:1::/48", // local-use NAT64
	"fc00::/7",       // unique local, RFC 4193
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
)

var (
	globalV6  = netip.MustParsePrefix("2000::/3")
	v4compat  = netip.MustParsePrefix("::/96")        // ::a.b.c.d, deprecated; :: and ::1 are apart
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: embeds an IPv4 address
	sixToFour = netip.MustParsePrefix("2002::/16")    // RFC 3056: embeds an IPv4 address
	multicast = netip.MustParsePrefix("ff00::/8")
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckAddr reports whether the gateway may connect to a: nil for a
// public unicast address. allowPrivate admits loopback, private,
// link-local and the other special-use unicast blocks too, but never the
// unspecified address, multicast or broadcast. IPv4 addresses in IPv6
// form (mapped, compatible, NAT64, 6to4) are judged by the IPv4 address
// they carry.
func CheckAddr(a netip.Addr, allowPrivate bool) error {
	if !a.IsValid() {
		return ErrForbiddenAddress
	}
	a = a.WithZone("").Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			// 64:ff9b::a.b.c.d reaches a.b.c.d through the network's NAT64.
			return CheckAddr(netip.AddrFrom4([4]byte(b[12:16])), allowPrivate)
		case v4compat.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
			if err := CheckAddr(netip.AddrFrom4([4]byte(b[12:16])), allowPrivate); err != nil {
				return err
			}
		case sixToFour.Contains(a):
			if err := CheckAddr(netip.AddrFrom4([4]byte(b[2:6])), allowPrivate); err != nil {
				return err
			}
		}
		switch {
		case a.IsUnspecified(), multicast.Contains(a):
			return ErrForbiddenAddress
		case allowPrivate:
			return nil
		case !globalV6.Contains(a), inAny(a, privateV6):
			return ErrForbiddenAddress
		}
		return nil
	}
	switch {
	case inAny(a, neverV4):
		return ErrForbiddenAddress
	case allowPrivate:
		return nil
	case inAny(a, privateV4):
		return ErrForbiddenAddress
	}
	return nil
}
