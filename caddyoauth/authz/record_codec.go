package authz

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
)

// Records are stored in a compact binary form: Validate decodes one on
// every request, and the file store keeps every record in memory.
//
//	byte    recordV1
//	uvarint flags: which fields follow (fieldX bits)
//	then, in bit order, each field present:
//	  string fields: uvarint length, bytes
//	  IssuedAt: varint; ExpiresAt and RotatedAt: varint difference to
//	  IssuedAt; AccessTTL: varint
//	  Pair: the 32-byte SHA-256 digest under fieldPairAccess or
//	  fieldPairRefresh, else a string under fieldPair
//	  Parent: likewise, the digest under fieldParentRefresh, else a
//	  string under fieldParent
//	  SuccessorUsed: the flag alone
//	  Grant: uvarint, a grantKind other than grantNone
//	  Resource: a string
//	  Cnf: its JKT and X5T, each a string
//
// A field left out is empty or zero. Records written before this format
// are JSON objects, which never start with recordV1, and still decode.
const recordV1 = 0x01

const (
	fieldClientID = 1 << iota
	fieldUserID
	fieldScope
	fieldRedirectURI
	fieldFamily
	fieldChallenge
	fieldChallengeMethod
	fieldIssuedAt
	fieldExpiresAt
	fieldAccessTTL
	fieldPair
	fieldPairAccess
	fieldPairRefresh
	fieldRotatedAt
	fieldJTI
	fieldIssuer
	fieldAudience
	fieldParent
	fieldParentRefresh
	fieldSuccessorUsed
	fieldGrant
	fieldResource
	fieldCnfJKT
	fieldCnfX5T
	fieldsKnown = 1<<iota - 1
)

const digestLen = 32 // SHA-256

// pairKeyLen is the length of an access or refresh key: its prefix and a
// base64url digest.
const pairKeyLen = len(prefixAccess) + 43

// Both prefixes must have one length for pairKeyLen (a compile error
// otherwise).
var _ = [1]struct{}{}[len(prefixAccess)-len(prefixRefresh)]

var errBadRecord = errors.New("authz: malformed record")

// strFields are the string fields in their order in the encoding.
func (r *record) strFields() [7]*string {
	return [7]*string{&r.ClientID, &r.UserID, &r.Scope, &r.RedirectURI, &r.Family, &r.Challenge, &r.ChallengeMethod}
}

// jwtFields are the string fields encoded after the numbers.
func (r *record) jwtFields() [3]*string {
	return [3]*string{&r.JTI, &r.Issuer, &r.Audience}
}

// pairDigest returns the flag and digest of a Pair that is an access or
// refresh key (prefix and canonical base64url of a SHA-256 digest), or
// fieldPair when it must be kept as a string.
func pairDigest(pair string, d *[digestLen]byte) int {
	flag := fieldPair
	switch {
	case len(pair) > len(prefixAccess) && pair[:len(prefixAccess)] == prefixAccess:
		flag, pair = fieldPairAccess, pair[len(prefixAccess):]
	case len(pair) > len(prefixRefresh) && pair[:len(prefixRefresh)] == prefixRefresh:
		flag, pair = fieldPairRefresh, pair[len(prefixRefresh):]
	default:
		return fieldPair
	}
	if len(pair) != base64.RawURLEncoding.EncodedLen(digestLen) {
		return fieldPair
	}
	// Strict: a non-canonical encoding would not come back the same.
	if n, err := base64.RawURLEncoding.Strict().Decode(d[:], []byte(pair)); err != nil || n != digestLen {
		return fieldPair
	}
	return flag
}

func (r *record) encode() []byte {
	var flags uint64
	for i, p := range r.strFields() {
		if *p != "" {
			flags |= fieldClientID << i
		}
	}
	for i, p := range r.jwtFields() {
		if *p != "" {
			flags |= fieldJTI << i
		}
	}
	if r.IssuedAt != 0 {
		flags |= fieldIssuedAt
	}
	if r.ExpiresAt != 0 {
		flags |= fieldExpiresAt
	}
	if r.AccessTTL != 0 {
		flags |= fieldAccessTTL
	}
	if r.RotatedAt != 0 {
		flags |= fieldRotatedAt
	}
	var d, pd [digestLen]byte
	if r.Pair != "" {
		flags |= uint64(pairDigest(r.Pair, &d))
	}
	if r.Parent != "" {
		if pairDigest(r.Parent, &pd) == fieldPairRefresh {
			flags |= fieldParentRefresh
		} else {
			flags |= fieldParent
		}
	}
	if r.SuccessorUsed {
		flags |= fieldSuccessorUsed
	}
	if r.Grant != grantNone {
		flags |= fieldGrant
	}
	if r.Resource != "" {
		flags |= fieldResource
	}
	var jkt, x5t string
	if r.Cnf != nil {
		jkt, x5t = r.Cnf.JKT, r.Cnf.X5T
	}
	if jkt != "" {
		flags |= fieldCnfJKT
	}
	if x5t != "" {
		flags |= fieldCnfX5T
	}

	n := 1 + binary.MaxVarintLen64*10 + len(r.Pair) + len(r.Parent) + len(r.Resource) + len(jkt) + len(x5t)
	for _, p := range r.strFields() {
		n += binary.MaxVarintLen64 + len(*p)
	}
	for _, p := range r.jwtFields() {
		n += binary.MaxVarintLen64 + len(*p)
	}
	b := make([]byte, 0, n)
	b = append(b, recordV1)
	b = binary.AppendUvarint(b, flags)
	putStr := func(s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	for _, p := range r.strFields() {
		if *p != "" {
			b = putStr(*p)
		}
	}
	if flags&fieldIssuedAt != 0 {
		b = binary.AppendVarint(b, r.IssuedAt)
	}
	if flags&fieldExpiresAt != 0 {
		b = binary.AppendVarint(b, r.ExpiresAt-r.IssuedAt)
	}
	if flags&fieldAccessTTL != 0 {
		b = binary.AppendVarint(b, r.AccessTTL)
	}
	switch {
	case flags&fieldPair != 0:
		b = putStr(r.Pair)
	case flags&(fieldPairAccess|fieldPairRefresh) != 0:
		b = append(b, d[:]...)
	}
	if flags&fieldRotatedAt != 0 {
		b = binary.AppendVarint(b, r.RotatedAt-r.IssuedAt)
	}
	for _, p := range r.jwtFields() {
		if *p != "" {
			b = putStr(*p)
		}
	}
	switch {
	case flags&fieldParent != 0:
		b = putStr(r.Parent)
	case flags&fieldParentRefresh != 0:
		b = append(b, pd[:]...)
	}
	if r.Grant != grantNone {
		b = binary.AppendUvarint(b, uint64(r.Grant))
	}
	if r.Resource != "" {
		b = putStr(r.Resource)
	}
	if jkt != "" {
		b = putStr(jkt)
	}
	if x5t != "" {
		b = putStr(x5t)
	}
	return b
}

func decodeRecord(b []byte) (*record, error) {
	if len(b) == 0 || b[0] != recordV1 {
		// Written before the binary format.
		r := new(record)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, err
		}
		return r, nil
	}
	return decodeV1(b[1:])
}

// decodeV1 reads the fields after the version byte. Its strings share one
// copy of the input, so a record costs three allocations at most (four
// for a bound token's).
func decodeV1(b []byte) (*record, error) {
	flags, n := binary.Uvarint(b)
	if n <= 0 || flags&^fieldsKnown != 0 || bits.OnesCount64(flags&(fieldPair|fieldPairAccess|fieldPairRefresh)) > 1 ||
		flags&(fieldParent|fieldParentRefresh) == fieldParent|fieldParentRefresh {
		return nil, errBadRecord
	}
	src := string(b) // one copy for every string field
	pos := n
	bad := false
	str := func() string {
		l, n := binary.Uvarint(b[pos:])
		if n <= 0 || l > uint64(len(b)-pos-n) {
			bad = true
			return ""
		}
		start := pos + n
		pos = start + int(l)
		return src[start:pos]
	}
	num := func() int64 {
		v, n := binary.Varint(b[pos:])
		if n <= 0 {
			bad = true
			return 0
		}
		pos += n
		return v
	}
	r := new(record)
	for i, p := range r.strFields() {
		if flags&(fieldClientID<<i) != 0 && !bad {
			*p = str()
		}
	}
	if flags&fieldIssuedAt != 0 && !bad {
		r.IssuedAt = num()
	}
	if flags&fieldExpiresAt != 0 && !bad {
		r.ExpiresAt = r.IssuedAt + num()
	}
	if flags&fieldAccessTTL != 0 && !bad {
		r.AccessTTL = num()
	}
	switch {
	case bad:
	case flags&fieldPair != 0:
		r.Pair = str()
	case flags&(fieldPairAccess|fieldPairRefresh) != 0:
		prefix := prefixAccess
		if flags&fieldPairRefresh != 0 {
			prefix = prefixRefresh
		}
		if r.Pair, bad = digestKey(b, &pos, prefix); bad {
			return nil, errBadRecord
		}
	}
	if flags&fieldRotatedAt != 0 && !bad {
		r.RotatedAt = r.IssuedAt + num()
	}
	for i, p := range r.jwtFields() {
		if flags&(fieldJTI<<i) != 0 && !bad {
			*p = str()
		}
	}
	switch {
	case bad:
	case flags&fieldParent != 0:
		r.Parent = str()
	case flags&fieldParentRefresh != 0:
		r.Parent, bad = digestKey(b, &pos, prefixRefresh)
	}
	r.SuccessorUsed = flags&fieldSuccessorUsed != 0
	if flags&fieldGrant != 0 && !bad {
		k, n := binary.Uvarint(b[pos:])
		if n <= 0 || k == uint64(grantNone) || k >= uint64(grantKinds) {
			return nil, errBadRecord
		}
		pos += n
		r.Grant = grantKind(k)
	}
	if flags&fieldResource != 0 && !bad {
		r.Resource = str()
	}
	// Only a bound token's record costs the confirmation's allocation.
	if flags&(fieldCnfJKT|fieldCnfX5T) != 0 && !bad {
		r.Cnf = new(Confirmation)
		if flags&fieldCnfJKT != 0 {
			r.Cnf.JKT = str()
		}
		if flags&fieldCnfX5T != 0 && !bad {
			r.Cnf.X5T = str()
		}
		if *r.Cnf == (Confirmation{}) {
			r.Cnf = nil // binds nothing, as encode writes it
		}
	}
	if bad || pos != len(b) {
		return nil, errBadRecord
	}
	return r, nil
}

// digestKey reads the digest at b[*pos:] as a key with prefix and moves
// *pos past it; bad when b is too short.
func digestKey(b []byte, pos *int, prefix string) (key string, bad bool) {
	if len(b)-*pos < digestLen {
		return "", true
	}
	var k [pairKeyLen]byte
	n := copy(k[:], prefix)
	base64.RawURLEncoding.Encode(k[n:], b[*pos:*pos+digestLen])
	*pos += digestLen
	return string(k[:]), false
}
