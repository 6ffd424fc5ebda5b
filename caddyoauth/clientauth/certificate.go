package clientauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// VerifyCertificate checks the client certificate of the TLS connection
// state cs for c (RFC 8705 §2):
//
//   - tls_client_auth: the TLS server verified the certificate's chain
//     against its trusted CAs (cs.VerifiedChains is not empty; a server
//     that only requests certificates verifies nothing, and is refused),
//     and the leaf's subject or SAN is the registered one;
//   - self_signed_tls_client_auth: the leaf's public key is one of c's
//     keys (its jwks_uri fetched again, at most once per RefreshInterval,
//     when none matches); the chain is not checked, as the key is the
//     client's identity.
//
// The TLS handshake proved the client holds the certificate's private
// key. A refused certificate gets an *Error.
func (v *Verifier) VerifyCertificate(ctx context.Context, c Client, cs *tls.ConnectionState) error {
	if c.Method == nil || (c.Method.Name != TLSClientAuth && c.Method.Name != SelfSignedTLSClientAuth) {
		return refuse("the client does not authenticate with a TLS client certificate")
	}
	if cs == nil {
		return refuse("the client authenticates with a TLS client certificate, and the request did not come over TLS")
	}
	if len(cs.PeerCertificates) == 0 {
		return refuse("the client authenticates with a TLS client certificate, and none was presented")
	}
	leaf := cs.PeerCertificates[0]
	if c.Method.Name == TLSClientAuth {
		if len(cs.VerifiedChains) == 0 {
			return refuse("the client certificate's chain was not verified against the site's trusted CAs")
		}
		if !c.Method.Cert.matches(leaf) {
			return refuse("the client certificate is not the one registered for the client")
		}
		return nil
	}
	for refresh := range 2 {
		ks, fresh, err := v.keys(ctx, c, refresh == 1)
		if err != nil {
			return err
		}
		if refresh == 1 && !fresh {
			break
		}
		if ks.hasPublicKey(leaf.PublicKey) {
			return nil
		}
		if c.Method.JWKSURI == "" || fresh {
			break
		}
	}
	return refuse("the client certificate's public key is not one of the client's keys")
}

// matches reports whether cert has the attribute m names.
func (m CertMatch) matches(cert *x509.Certificate) bool {
	switch {
	case m.SubjectDN != "":
		want, err := parseDN(m.SubjectDN)
		if err != nil {
			return false
		}
		got, ok := certDN(cert)
		return ok && slices.EqualFunc(want, got, slices.Equal)
	case m.DNS != "":
		return slices.ContainsFunc(cert.DNSNames, func(n string) bool {
			return strings.EqualFold(strings.TrimSuffix(n, "."), strings.TrimSuffix(m.DNS, "."))
		})
	case m.URI != "":
		return slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return u.String() == m.URI })
	case m.IP != "":
		want, err := netip.ParseAddr(m.IP)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(cert.IPAddresses, func(ip net.IP) bool {
			got, ok := netip.AddrFromSlice(ip)
			return ok && got.Unmap() == want.Unmap()
		})
	case m.Email != "":
		return slices.ContainsFunc(cert.EmailAddresses, func(e string) bool { return sameEmail(e, m.Email) })
	}
	return false
}

// sameEmail compares two addresses: the local part exactly, the domain
// without regard to case (RFC 5280 §7.5).
func sameEmail(a, b string) bool {
	ia, ib := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if ia < 0 || ib < 0 {
		return false
	}
	return a[:ia] == b[:ib] && strings.EqualFold(a[ia+1:], b[ib+1:])
}

// A distinguished name is compared as its RDNs in RFC 4514 order (the
// last of the certificate's first), each the sorted list of its
// attributes as "<OID>=<value>", the value with spaces trimmed and runs of
// spaces made one, in lower case (X.520 caseIgnoreMatch, which matches
// the attributes named here).
type dn [][]string

// attributeTypes are the RFC 4514 §3 names, and a few more in common use.
var attributeTypes = map[string]string{
	"CN": "2.5.4.3", "SN": "2.5.4.4", "SERIALNUMBER": "2.5.4.5", "C": "2.5.4.6",
	"L": "2.5.4.7", "ST": "2.5.4.8", "STREET": "2.5.4.9", "O": "2.5.4.10",
	"OU": "2.5.4.11", "TITLE": "2.5.4.12", "POSTALCODE": "2.5.4.17",
	"GIVENNAME": "2.5.4.42", "DC": "0.9.2342.19200300.100.1.25",
	"UID": "0.9.2342.19200300.100.1.1", "EMAILADDRESS": "1.2.840.113549.1.9.1",
	"ORGANIZATIONIDENTIFIER": "2.5.4.97",
}

func attributeOID(name string) (string, bool) {
	if oid, ok := attributeTypes[strings.ToUpper(name)]; ok {
		return oid, true
	}
	if name == "" || strings.Trim(name, "0123456789.") != "" || strings.Contains(name, "..") ||
		name[0] == '.' || name[len(name)-1] == '.' || !strings.Contains(name, ".") {
		return "", false
	}
	return name, true
}

func normValue(v string) string { return strings.ToLower(strings.Join(strings.Fields(v), " ")) }

// parseDN reads an RFC 4514 string: RDNs separated by ",", attributes of
// one RDN by "+", each type=value with the value's special characters
// escaped by a backslash or as \XX hex pairs. A value in #hex (BER) form
// is not supported.
func parseDN(s string) (dn, error) {
	var out dn
	var rdn []string
	i := 0
	for {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return nil, errors.New("a distinguished name is type=value pairs separated by commas")
		}
		oid, ok := attributeOID(strings.TrimSpace(s[i : i+eq]))
		if !ok {
			return nil, errors.New("unknown attribute type " + safeDNText(strings.TrimSpace(s[i:i+eq])) + " (use a name such as CN, O, OU, C, DC or a dotted OID)")
		}
		i += eq + 1
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i < len(s) && s[i] == '#' {
			return nil, errors.New("a value in #hex form is not supported")
		}
		var val []byte
		for i < len(s) && s[i] != ',' && s[i] != '+' {
			if s[i] != '\\' {
				val = append(val, s[i])
				i++
				continue
			}
			i++
			switch {
			case i+1 < len(s) && isHex(s[i]) && isHex(s[i+1]):
				b, _ := hex.DecodeString(s[i : i+2])
				val = append(val, b[0])
				i += 2
			case i < len(s) && strings.IndexByte(" \"#+,;<=>\\", s[i]) >= 0:
				val = append(val, s[i])
				i++
			default:
				return nil, errors.New("a backslash escapes a special character or two hex digits")
			}
		}
		if !utf8.Valid(val) || normValue(string(val)) == "" {
			return nil, errors.New("an attribute value is empty or not UTF-8")
		}
		rdn = append(rdn, oid+"="+normValue(string(val)))
		if i < len(s) && s[i] == '+' {
			i++
			continue
		}
		slices.Sort(rdn)
		out = append(out, rdn)
		rdn = nil
		if i >= len(s) {
			return out, nil
		}
		i++ // the comma
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func safeDNText(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// certDN is the subject of cert as parseDN reads a string; ok is false
// for a subject holding a value that is not a string.
func certDN(cert *x509.Certificate) (dn, bool) {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return nil, false
	}
	out := make(dn, 0, len(seq))
	for i := len(seq) - 1; i >= 0; i-- {
		var rdn []string
		for _, atv := range seq[i] {
			v, ok := atv.Value.(string)
			if !ok {
				return nil, false
			}
			rdn = append(rdn, atv.Type.String()+"="+normValue(v))
		}
		slices.Sort(rdn)
		out = append(out, rdn)
	}
	return out, true
}
