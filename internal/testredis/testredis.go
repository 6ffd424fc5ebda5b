// Package testredis runs real redis-server processes for tests: a standalone
// server (which a test may stop and restart to simulate an outage), its
// replicas, Sentinels (redis-server --sentinel) and a three-master Redis
// Cluster, all on free loopback ports in temp dirs.
//
// The binaries come from the Debian packages redis-server and redis-tools.
// A missing binary fails the test rather than skipping it, so a machine
// without Redis cannot pass the suite by running less of it.
package testredis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process on a loopback port.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	lead []string // arguments before the options: a config file, --sentinel

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *bytes.Buffer
}

// Start starts a redis-server with nothing persisted on a free loopback port
// and stops it when the test ends. Extra arguments (such as
// "--requirepass", "secret") are passed to redis-server.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	// A replica's full sync starts at once rather than after the default
	// 5 s wait for more replicas.
	args := append([]string{"--repl-diskless-sync-delay", "0"}, extra...)
	return start(t, &Server{args: args})
}

// StartSentinel starts a Redis Sentinel that monitors master under the
// name masterName (quorum 1) and stops it when the test ends. Its Addr is
// the Sentinel's own address.
func StartSentinel(t testing.TB, master *Server, masterName string) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	// Sentinel rewrites its config file, so it gets one of its own.
	monitor := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", masterName, master.port)
	if err := os.WriteFile(conf, []byte(monitor), 0o600); err != nil {
		t.Fatalf("testredis: %v", err)
	}
	// The monitor comes from the config file, so the Sentinel knows the
	// master once it answers PING.
	return start(t, &Server{dir: dir, lead: []string{conf, "--sentinel"}})
}

func start(t testing.TB, s *Server) *Server {
	t.Helper()
	s.t, s.bin = t, lookPath(t, "redis-server")
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	t.Cleanup(s.Stop)
	// A port found free may be taken before redis-server binds it; try
	// again with another one rather than fail the test.
	var err error
	for range 3 {
		s.port = freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("testredis: %v", err)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is a redis:// URL of the server's database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop kills the server, as a crash would; it may be restarted.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port (empty, since nothing is
// persisted) and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("testredis: restart: %v", err)
	}
}

func (s *Server) start() error {
	args := append(append([]string(nil), s.lead...),
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir)
	args = append(args, s.args...)
	cmd, done, log, err := spawn(s.bin, s.dir, args...)
	if err != nil {
		return err
	}
	if err := waitReady(s.Addr(), done, log); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return err
	}
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, log
	s.mu.Unlock()
	return nil
}

// Cluster is a Redis Cluster of three masters without replicas.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// redis-cli --cluster create and waits until every node reports
// cluster_state:ok. The nodes stop when the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := lookPath(t, "redis-cli")
	c := &Cluster{}
	for range 3 {
		// The cluster bus gets a free port of its own instead of the
		// default port+10000, which nothing checked to be free.
		c.nodes = append(c.nodes, Start(t,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(freePort(t)),
		))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.nodes {
		for {
			info, err := command(n.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testredis: cluster node %s not ok after %v: %q, %v", n.Addr(), startTimeout, info, err)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition
		}
	}
	return c
}

// Addrs are the host:port addresses of the cluster's nodes.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.Addr())
	}
	return out
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testredis: %s not found in PATH; install it: apt-get install -y redis-server redis-tools", name)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testredis: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// spawn starts bin in dir and returns a channel closed once it has exited.
func spawn(bin, dir string, args ...string) (*exec.Cmd, chan struct{}, *bytes.Buffer, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// The log is read only after done is closed: Wait has then finished
	// copying the output, so no lock is needed.
	log := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = log, log
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return cmd, done, log, nil
}

// waitReady polls PING until the server answers, it exits, or startTimeout
// passes.
func waitReady(addr string, done <-chan struct{}, log *bytes.Buffer) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited during start:\n%s", addr, log)
		default:
		}
		reply, err := command(addr, "PING")
		// NOAUTH is a server with requirepass that is up and serving.
		if err == nil && reply == "PONG" || err != nil && strings.HasPrefix(err.Error(), "NOAUTH") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not answering PING after %v: %v", addr, startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
}

// command sends one command over a fresh connection and returns a simple or
// bulk string reply; it is just enough RESP for PING and CLUSTER INFO.
func command(addr string, args ...string) (string, error) {
	conn, r, err := send(addr, args...)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	line, err := readLine(r)
	if err != nil {
		return "", err
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		return readBulk(r, line)
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// send opens a connection to addr with a deadline and sends one command.
func send(addr string, args ...string) (net.Conn, *bufio.Reader, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, bufio.NewReader(conn), nil
}

// readBulk reads the body of a bulk string whose header line is line.
func readBulk(r *bufio.Reader, line string) (string, error) {
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("bad bulk reply %q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
