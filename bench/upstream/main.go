// Command upstream is the benchmark's legacy API: it answers every request
// with the identity the gateway handed it, so a check before each row can
// prove that the request went through oauth_protect and came out with the
// right user.
//
//	upstream -listen 127.0.0.1:9000
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on (loopback only)")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("user=" + r.Header.Get("X-User-ID") + "\n"))
	})
	log.Fatal(http.ListenAndServe(*listen, h))
}
