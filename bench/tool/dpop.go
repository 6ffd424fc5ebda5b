package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The DPoP row: a DPoP-bound access token, and ES256 proofs made ahead of
// time, one per request, each with its own jti, so that the load sends
// what a DPoP client sends and the gateway checks one signature a request.
//
//	tool dpop-token -key <file> -url <token endpoint> -client <id> -secret <s>
//	    makes an ES256 key (kept in <file>, PEM) and prints an access token
//	    bound to it (client_credentials with a proof)
//	tool dpop-proofs -key <file> -token <access token> -url <API URL> -n <N> -out <file>
//	    writes N proofs for GET <API URL> with that token, one a line, all
//	    issued now: a proof is accepted for the gateway's proof_max_age
//	    (60s), so they are made right before the run that sends them.

func dpopToken(args []string) {
	fs := flag.NewFlagSet("dpop-token", flag.ExitOnError)
	keyFile := fs.String("key", "", "file to keep the key in")
	target := fs.String("url", "", "the token endpoint")
	client := fs.String("client", "", "client_id")
	secret := fs.String("secret", "", "client secret")
	_ = fs.Parse(args)
	if *keyFile == "" || *target == "" || *client == "" {
		fatalf("dpop-token needs -key, -url and -client")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fatalf("%v", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		fatalf("%v", err)
	}
	if err := os.WriteFile(*keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		fatalf("%v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, *target, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(*client), url.QueryEscape(*secret))
	req.Header.Set("DPoP", newProofSigner(key).proof(http.MethodPost, *target, "", time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fatalf("%v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || resp.StatusCode != 200 || tr.TokenType != "DPoP" {
		fatalf("token endpoint answered %d %s", resp.StatusCode, body)
	}
	fmt.Println(tr.AccessToken)
}

func dpopProofs(args []string) {
	fs := flag.NewFlagSet("dpop-proofs", flag.ExitOnError)
	keyFile := fs.String("key", "", "the key dpop-token made")
	token := fs.String("token", "", "the access token")
	target := fs.String("url", "", "the URL the proofs are for (GET)")
	n := fs.Int("n", 10000, "how many proofs")
	out := fs.String("out", "", "file to write them to")
	_ = fs.Parse(args)
	if *keyFile == "" || *token == "" || *target == "" || *out == "" {
		fatalf("dpop-proofs needs -key, -token, -url and -out")
	}
	b, err := os.ReadFile(*keyFile)
	if err != nil {
		fatalf("%v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		fatalf("%s holds no PEM key", *keyFile)
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		fatalf("%v", err)
	}
	f, err := os.Create(*out)
	if err != nil {
		fatalf("%v", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	s := newProofSigner(key)
	now := time.Now()
	for i := 0; i < *n; i++ {
		w.WriteString(s.proof(http.MethodGet, *target, *token, now))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fatalf("%v", err)
	}
	if err := f.Close(); err != nil {
		fatalf("%v", err)
	}
}

// proofSigner signs DPoP proofs (RFC 9449 §4.2) with an ES256 key.
type proofSigner struct {
	key    *ecdsa.PrivateKey
	header string // base64url of the JOSE header, the same for every proof
}

func newProofSigner(key *ecdsa.PrivateKey) *proofSigner {
	pad := func(b []byte) string {
		p := make([]byte, 32)
		copy(p[32-len(b):], b)
		return base64.RawURLEncoding.EncodeToString(p)
	}
	pub, _ := key.PublicKey.ECDH()
	raw := pub.Bytes() // 0x04 || x || y
	h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256",
		"jwk": map[string]string{"kty": "EC", "crv": "P-256", "x": pad(raw[1:33]), "y": pad(raw[33:])}})
	return &proofSigner{key: key, header: base64.RawURLEncoding.EncodeToString(h)}
}

func (s *proofSigner) proof(htm, htu, token string, iat time.Time) string {
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	c := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti[:]), "htm": htm, "htu": htu, "iat": iat.Unix()}
	if token != "" {
		d := sha256.Sum256([]byte(token))
		c["ath"] = base64.RawURLEncoding.EncodeToString(d[:])
	}
	cb, _ := json.Marshal(c)
	input := s.header + "." + base64.RawURLEncoding.EncodeToString(cb)
	d := sha256.Sum256([]byte(input))
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, d[:])
	if err != nil {
		fatalf("%v", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
