package authz

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddyoauth/gateway/caddyoauth/oidc"
)

// AuthenticatorChain asks its sources in order: the first that accepts the
// credentials decides. When none accepts and one of them could not answer,
// the chain returns that source's error rather than ErrBadCredentials, so
// a source that is down is never mistaken for a wrong password.
type AuthenticatorChain []Authenticator

// Authenticate implements Authenticator.
func (c AuthenticatorChain) Authenticate(ctx context.Context, username, password string) (string, error) {
	var failure error
	for _, src := range c {
		id, err := src.Authenticate(ctx, username, password)
		switch {
		case err == nil:
			return id, nil
		case errors.Is(err, ErrBadCredentials):
		case failure == nil:
			failure = err
		}
	}
	if failure != nil {
		return "", failure
	}
	return "", ErrBadCredentials
}

// ErrLoginUnavailable is the token endpoint's answer when a login source
// cannot be reached: 503 temporarily_unavailable, not invalid_grant.
var ErrLoginUnavailable = oauthErr("temporarily_unavailable", http.StatusServiceUnavailable,
	"the login service cannot be reached; retry later")

// LoginUnavailableError is returned by a login source that could not
// decide; it unwraps to ErrLoginUnavailable. Its text names the source but
// never the credentials.
type LoginUnavailableError struct{ Reason string }

func (e *LoginUnavailableError) Error() string { return "login source unavailable: " + e.Reason }

// Unwrap lets the token endpoint answer with ErrLoginUnavailable.
func (e *LoginUnavailableError) Unwrap() error { return ErrLoginUnavailable }

// fileUser is one entry of a users file.
type fileUser struct {
	Username     string `json:"username"`
	PasswordHash string `json:"password_hash"`
	UserID       string `json:"user_id"`
	// Claims are the user's OpenID Connect claims (JSON files only).
	Claims oidc.Claims `json:"claims,omitempty"`
}

// LoadUsersFile adds the users of a users file to users. The file is
// either a JSON array of {"username", "password_hash", "user_id",
// "claims"} objects
// or lines of username:bcrypt-hash[:user_id] (htpasswd style; blank lines
// and lines starting with # are skipped). Errors name the file and line.
func LoadUsersFile(path string, users StaticUsers) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("users_file: %v", err)
	}
	if t := bytes.TrimLeft(b, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '[' {
		return loadUsersJSON(path, b, users)
	}
	return loadUsersLines(path, b, users)
}

func loadUsersLines(path string, b []byte, users StaticUsers) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) < 2 {
			return fmt.Errorf("%s:%d: expected username:bcrypt-hash[:user_id]", path, n)
		}
		u := fileUser{Username: parts[0], PasswordHash: parts[1]}
		if len(parts) == 3 {
			u.UserID = parts[2]
		}
		if err := addFileUser(users, u); err != nil {
			return fmt.Errorf("%s:%d: %v", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("users_file %s: %v", path, err)
	}
	return nil
}

func loadUsersJSON(path string, b []byte, users StaticUsers) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	lineAt := func(off int64) int { return 1 + bytes.Count(b[:min(int(off), len(b))], []byte("\n")) }
	if _, err := dec.Token(); err != nil { // [
		return fmt.Errorf("%s:%d: %v", path, lineAt(dec.InputOffset()), err)
	}
	for dec.More() {
		// The entry starts after the offset, past a comma and spaces.
		start := dec.InputOffset()
		for start < int64(len(b)) && strings.ContainsRune(", \t\r\n", rune(b[start])) {
			start++
		}
		var u fileUser
		if err := dec.Decode(&u); err != nil {
			return fmt.Errorf("%s:%d: %v", path, lineAt(start), err)
		}
		if err := addFileUser(users, u); err != nil {
			return fmt.Errorf("%s:%d: %v", path, lineAt(start), err)
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return fmt.Errorf("%s:%d: %v", path, lineAt(dec.InputOffset()), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s:%d: unexpected data after the array", path, lineAt(dec.InputOffset()))
	}
	return nil
}

func addFileUser(users StaticUsers, u fileUser) error {
	if u.Username == "" {
		return fmt.Errorf("a user has no username")
	}
	if strings.ContainsAny(u.Username, "\x00\r\n") {
		return fmt.Errorf("user %q: the username has a control character", u.Username)
	}
	if _, dup := users[u.Username]; dup {
		return fmt.Errorf("user %q is defined twice", u.Username)
	}
	if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || len(u.PasswordHash) != 60 {
		return fmt.Errorf("user %q: the password hash is not a bcrypt hash", u.Username)
	}
	if u.UserID == "" {
		u.UserID = u.Username
	}
	if err := CheckUserID(u.UserID); err != nil {
		return fmt.Errorf("user %q: %v", u.Username, err)
	}
	if err := u.Claims.Check(); err != nil {
		return fmt.Errorf("user %q: %v", u.Username, err)
	}
	users[u.Username] = &User{Username: u.Username, PasswordHash: []byte(u.PasswordHash), UserID: u.UserID, Claims: u.Claims}
	return nil
}

// MaxUserIDLength bounds a user ID, in bytes.
const MaxUserIDLength = 256

// CheckUserID refuses a user ID the gateway would not hand to an upstream
// in X-User-ID. Wherever a user ID enters (user lines, users_file, a
// client's user, login_upstream, the admin API's user_id) it must be 1 to
// MaxUserIDLength bytes of UTF-8 whose characters are all printable
// (letters, marks, numbers, punctuation, symbols and the ASCII space; no
// control or invisible formatting characters), with no comma, which
// upstreams take for a list separator, and no space at either end, which
// header parsing drops.
func CheckUserID(id string) error {
	switch {
	case id == "":
		return errors.New("user ID is empty")
	case len(id) > MaxUserIDLength:
		return fmt.Errorf("user ID is longer than %d bytes", MaxUserIDLength)
	case !utf8.ValidString(id):
		return errors.New("user ID is not valid UTF-8")
	case id[0] == ' ' || id[len(id)-1] == ' ':
		return errors.New("user ID starts or ends with a space")
	}
	for _, r := range id {
		if r == ',' {
			return errors.New("user ID has a comma")
		}
		if unicode.IsControl(r) {
			return errors.New("user ID has a control character")
		}
		if !unicode.IsPrint(r) {
			return errors.New("user ID has an invisible character")
		}
	}
	return nil
}

// Interface guards
var (
	_ Authenticator = AuthenticatorChain(nil)
	_ Authenticator = (*UpstreamLogin)(nil)
	_ Authenticator = StaticUsers(nil)
)
