// Command tool holds the benchmark's helpers that bench/run.sh calls:
//
//	tool port                 print a free TCP port on 127.0.0.1
//	tool seed [flags]         fill a file or Redis store with live tokens
//	tool aof <file>           count the live records of a buntdb file
//	tool attack [flags]       send wrong client secrets as fast as it can
//	tool dpop-token [flags]   a DPoP-bound access token and its key (dpop.go)
//	tool dpop-proofs [flags]  DPoP proofs made ahead of time, one a line
//
// seed writes through authz.Service.IssueTokens, the code path of the token
// endpoint, so the records are byte for byte what the gateway writes; it
// only skips HTTP.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddyoauth/gateway/caddyoauth/authz"
	"github.com/caddyoauth/gateway/caddyoauth/store"
	"github.com/caddyoauth/gateway/caddyoauth/store/filestore"
	"github.com/caddyoauth/gateway/caddyoauth/store/redisstore"
)

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: tool port|seed|aof|attack|dpop-token|dpop-proofs ...")
	}
	switch os.Args[1] {
	case "port":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fatalf("%v", err)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
	case "seed":
		seed(os.Args[2:])
	case "attack":
		attack(os.Args[2:])
	case "dpop-token":
		dpopToken(os.Args[2:])
	case "dpop-proofs":
		dpopProofs(os.Args[2:])
	case "aof":
		if len(os.Args) != 3 {
			fatalf("usage: tool aof <file>")
		}
		aof(os.Args[2])
	default:
		fatalf("unknown command %q", os.Args[1])
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tool: "+format+"\n", args...)
	os.Exit(1)
}

// seed issues grants (an access and a refresh token each, as the password
// grant does) for users spread over -users user IDs.
func seed(args []string) {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	file := fs.String("file", "", "buntdb file of the file store")
	redisURL := fs.String("redis", "", "redis:// URL of the Redis store")
	grants := fs.Int("grants", 1000, "grants to issue")
	refresh := fs.Bool("refresh", true, "issue a refresh token with each access token")
	users := fs.Int("users", 10000, "distinct user IDs")
	clientID := fs.String("client", "bench", "client_id of the tokens")
	scope := fs.String("scope", "read", "scope of the tokens")
	accessOut := fs.String("access-out", "", "write up to -sample access tokens here")
	refreshOut := fs.String("refresh-out", "", "write every refresh token here")
	sample := fs.Int("sample", 10000, "access tokens written to -access-out")
	workers := fs.Int("workers", 8, "concurrent writers")
	accessTTL := fs.Duration("access-ttl", time.Hour, "access token lifetime (the gateway's access_token_ttl)")
	refreshTTL := fs.Duration("refresh-ttl", 720*time.Hour, "refresh token lifetime (the gateway's refresh_token_ttl)")
	compact := fs.Bool("compact", true, "close the file store cleanly, which compacts it; false leaves the append log as written, as after a crash")
	_ = fs.Parse(args)

	var st store.Store
	switch {
	case *file != "":
		db, err := filestore.Open(*file)
		if err != nil {
			fatalf("open %s: %v", *file, err)
		}
		st = db
	case *redisURL != "":
		opt, err := rueidis.ParseURL(*redisURL)
		if err != nil {
			fatalf("redis URL: %v", err)
		}
		s, err := redisstore.Open(opt, "", 0)
		if err != nil {
			fatalf("redis: %v", err)
		}
		st = s
	default:
		fatalf("seed needs -file or -redis")
	}

	svc := authz.New(authz.Config{AccessTokenTTL: *accessTTL, RefreshTokenTTL: *refreshTTL, CodeTTL: time.Minute, RefreshRotation: true},
		st, authz.StaticClients{}, nil, nil)
	client := &authz.Client{ID: *clientID}

	var (
		next     atomic.Int64
		mu       sync.Mutex
		accesses []string
		refreshs []string
		wg       sync.WaitGroup
		firstErr atomic.Value
	)
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*grants) || firstErr.Load() != nil {
					return
				}
				user := fmt.Sprintf("user-%d", i%int64(*users))
				a, r, err := svc.IssueTokens(context.Background(), client, user, *scope, *refresh)
				if err != nil {
					firstErr.Store(err)
					return
				}
				mu.Lock()
				if len(accesses) < *sample {
					accesses = append(accesses, a)
				}
				if *refreshOut != "" && r != "" {
					refreshs = append(refreshs, r)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		fatalf("issuing: %v", err)
	}
	writeLines(*accessOut, accesses)
	writeLines(*refreshOut, refreshs)
	tokens := *grants
	if *refresh {
		tokens *= 2
	}
	fmt.Fprintf(os.Stderr, "seeded %d tokens (%d grants) in %.1fs\n", tokens, *grants, time.Since(start).Seconds())
	if !*compact {
		// buntdb has written every commit to the file already; exiting
		// without Close skips only the compaction (and the last fsync).
		os.Exit(0)
	}
	if err := st.Close(); err != nil {
		fatalf("closing the store: %v", err)
	}
}

func writeLines(path string, lines []string) {
	if path == "" {
		return
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		fatalf("%v", err)
	}
}

// aof replays a buntdb append-only file as it is on disk, without applying
// expiry itself, and prints how many keys of each kind it still holds and
// how many deletes it recorded: a key the running gateway swept shows up
// as a delete, one it did not as a live key.
func aof(path string) {
	f, err := os.Open(path)
	if err != nil {
		fatalf("%v", err)
	}
	defer f.Close()
	rd := bufio.NewReaderSize(f, 1<<20)
	live := map[string]struct{}{}
	dels := 0
	for {
		cmd, err := readCommand(rd)
		if err != nil {
			break
		}
		switch strings.ToLower(cmd[0]) {
		case "set":
			live[cmd[1]] = struct{}{}
		case "del":
			delete(live, cmd[1])
			dels++
		case "flushdb":
			live = map[string]struct{}{}
		}
	}
	kinds := map[string]int{}
	for k := range live {
		kind, _, _ := strings.Cut(k, ":")
		if strings.HasPrefix(k, "\x00s\x00") {
			kind = "set-member"
		}
		kinds[kind]++
	}
	fmt.Printf("live=%d dels=%d at=%d rt=%d members=%d\n", len(live), dels, kinds["at"], kinds["rt"], kinds["set-member"])
}

// readCommand reads one RESP array of bulk strings, buntdb's file format.
func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	var n int
	if _, err := fmt.Sscanf(line, "*%d\r\n", &n); err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		var size int
		if _, err := fmt.Sscanf(line, "$%d\r\n", &size); err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		out[i] = string(buf[:size])
	}
	return out, nil
}

// attack plays an attacker who knows a client_id and guesses its secret:
// it posts to url with HTTP Basic credentials of client and a wrong secret
// from conns connections, at rate requests a second (the per-address limit
// of the endpoint: more would only be answered 429), for duration, from
// its own loopback address (so the gateway counts it apart from the load
// it runs beside), and prints how the gateway answered.
func attack(args []string) {
	fs := flag.NewFlagSet("attack", flag.ExitOnError)
	target := fs.String("url", "", "endpoint to post to, e.g. http://127.0.0.1:PORT/oauth/introspect")
	client := fs.String("client", "", "client_id to authenticate as")
	duration := fs.Duration("duration", 3*time.Second, "how long to attack")
	conns := fs.Int("conns", 8, "concurrent connections")
	source := fs.String("source", "127.0.0.2", "local address to send from")
	rate := fs.Int("rate", 100, "requests a second, over all connections")
	_ = fs.Parse(args)
	if *target == "" || *client == "" {
		fatalf("attack needs -url and -client")
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(*source)}, Timeout: 5 * time.Second}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: dialer.DialContext, MaxIdleConnsPerHost: *conns}}
	deadline := time.Now().Add(*duration)
	tick := time.NewTicker(time.Second / time.Duration(max(*rate, 1)))
	defer tick.Stop()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				<-tick.C
				req, _ := http.NewRequest(http.MethodPost, *target, strings.NewReader("token=guess"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(*client, fmt.Sprintf("wrong-%d-%d", i, n))
				status := 0
				if resp, err := hc.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	total := 0
	var parts []string
	for code, n := range statuses {
		total += n
		parts = append(parts, fmt.Sprintf("%d:%d", code, n))
	}
	sort.Strings(parts)
	fmt.Printf("%d %s\n", total, strings.Join(parts, ","))
}
