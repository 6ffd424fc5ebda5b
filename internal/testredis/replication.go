package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartReplica starts a redis-server that replicates master and waits
// until its link to the master is up and the master counts it as online. Extra arguments are passed to redis-server. Restarted, it
// comes back empty and syncs again.
func StartReplica(t testing.TB, master *Server, extra ...string) *Server {
	t.Helper()
	args := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(master.port)}, extra...)
	r := Start(t, args...)
	r.waitReplicating(t, master)
	return r
}

// waitReplicating waits until s is a replica of master whose link is up
// and which the master counts as online: after a diskless sync the master
// does so only once the replica's first acknowledgement arrived (up to a
// second later), and until then WAIT does not count it.
func (s *Server) waitReplicating(t testing.TB, master *Server) {
	t.Helper()
	want := "master_port:" + strconv.Itoa(master.port)
	online := fmt.Sprintf("port=%d,state=online", s.port)
	deadline := time.Now().Add(startTimeout)
	for {
		info, err := s.Info("replication")
		var minfo string
		if err == nil && strings.Contains(info, want) && strings.Contains(info, "master_link_status:up") {
			minfo, err = master.Info("replication")
			if err == nil && strings.Contains(minfo, online) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testredis: %s not replicating %s after %v: %q, %q, %v", s.Addr(), master.Addr(), startTimeout, info, minfo, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

// AddReplica starts a replica of the cluster's i-th master, joins it to
// the cluster (redis-cli --cluster add-node --cluster-slave) and waits
// until it replicates. Only that master's slots get a replica.
func (c *Cluster) AddReplica(t testing.TB, i int) *Server {
	t.Helper()
	cli := lookPath(t, "redis-cli")
	master := c.nodes[i]
	id, err := command(master.Addr(), "CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("testredis: CLUSTER MYID: %v", err)
	}
	r := Start(t,
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(freePort(t)),
	)
	out, err := exec.Command(cli, "--cluster", "add-node", r.Addr(), master.Addr(),
		"--cluster-slave", "--cluster-master-id", id).CombinedOutput()
	if err != nil {
		t.Fatalf("testredis: redis-cli --cluster add-node: %v\n%s", err, out)
	}
	r.waitReplicating(t, master)
	return r
}

// Info is the server's INFO section.
func (s *Server) Info(section string) (string, error) {
	return command(s.Addr(), "INFO", section)
}

// Sentinels is a group of Redis Sentinels watching one master set, tuned
// to fail over within a few seconds: a master is down after one second
// without an answer, and the Sentinels talk to each other ten times more
// often than by default.
type Sentinels struct {
	Name  string
	nodes []*Server
}

// sentinelDebug shortens the Sentinels' periods (SENTINEL DEBUG, Redis 7),
// in milliseconds. The ping period stays above 200: a Sentinel trusts a
// replica's INFO for five ping periods during a failover, and asks for it
// only once a second then, so a shorter one finds no replica good enough
// to promote. TILT, which stops a Sentinel from acting for tilt-period
// after its timer ran late by tilt-trigger, would otherwise make a
// failover on a loaded test machine wait 30 s.
var sentinelDebug = []string{
	"info-period", "100",
	"ping-period", "300",
	"ask-period", "100",
	"publish-period", "200",
	"tilt-trigger", "10000",
	"tilt-period", "1000",
}

// StartSentinels starts n Sentinels (quorum n/2+1) that monitor master
// under name, and waits until each of them knows the master's replicas and
// the other Sentinels, so that a failover can start as soon as the master
// is down. They stop when the test ends.
func StartSentinels(t testing.TB, master *Server, name string, n int) *Sentinels {
	t.Helper()
	info, err := master.Info("replication")
	if err != nil {
		t.Fatalf("testredis: INFO replication of the master: %v", err)
	}
	replicas := infoInt(info, "connected_slaves")
	quorum := n/2 + 1
	g := &Sentinels{Name: name}
	for range n {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		cfg := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 2000\n", name, master.port, quorum)
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatalf("testredis: %v", err)
		}
		s := start(t, &Server{dir: dir, lead: []string{conf, "--sentinel"}})
		if _, err := command(s.Addr(), append([]string{"SENTINEL", "DEBUG"}, sentinelDebug...)...); err != nil {
			t.Fatalf("testredis: SENTINEL DEBUG: %v", err)
		}
		g.nodes = append(g.nodes, s)
	}
	want := fmt.Sprintf("name=%s,status=ok,address=%s,slaves=%d,sentinels=%d", name, master.Addr(), replicas, n)
	deadline := time.Now().Add(startTimeout)
	for _, s := range g.nodes {
		for {
			info, err := s.Info("sentinel")
			if err == nil && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testredis: sentinel %s not ready after %v (want %q): %q, %v", s.Addr(), startTimeout, want, info, err)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition
		}
	}
	return g
}

// Addrs are the Sentinels' host:port addresses.
func (g *Sentinels) Addrs() []string {
	var out []string
	for _, s := range g.nodes {
		out = append(out, s.Addr())
	}
	return out
}

// Master is the master's address as the first Sentinel that answers
// gives it (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (g *Sentinels) Master() (string, error) {
	var errs []error
	for _, s := range g.nodes {
		r, err := commandList(s.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.Name)
		if err == nil && len(r) == 2 {
			return net.JoinHostPort(r[0], r[1]), nil
		}
		errs = append(errs, fmt.Errorf("%s: %q, %v", s.Addr(), r, err))
	}
	return "", errors.Join(errs...)
}

// infoInt reads a numeric field of an INFO reply; -1 when absent.
func infoInt(info, field string) int {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return -1
}

// commandList sends one command and reads an array of bulk strings.
func commandList(addr string, args ...string) ([]string, error) {
	conn, r, err := send(addr, args...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	switch line[0] {
	case '-':
		return nil, errors.New(line[1:])
	case '*':
	default:
		return nil, fmt.Errorf("unexpected reply %q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return nil, fmt.Errorf("bad array reply %q", line)
	}
	var out []string
	for range n {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if line[0] != '$' {
			return nil, fmt.Errorf("unexpected element %q", line)
		}
		s, err := readBulk(r, line)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// readLine reads one non-empty reply line without its CRLF.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	return line, nil
}
