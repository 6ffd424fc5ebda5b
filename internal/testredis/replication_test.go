package testredis

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyoauth/gateway/internal/poll"
)

// TestSentinelsFailOver: three Sentinels promote the replica once the
// master is killed, and turn the old master, restarted, into a replica of
// the new one.
func TestSentinelsFailOver(t *testing.T) {
	m := Start(t)
	r := StartReplica(t, m)
	g := StartSentinels(t, m, "mymaster", 3)
	if len(g.Addrs()) != 3 {
		t.Fatalf("Addrs = %v", g.Addrs())
	}
	if a, err := g.Master(); err != nil || a != m.Addr() {
		t.Fatalf("Master = %q, %v; want %s", a, err, m.Addr())
	}
	m.Stop()
	poll.Until(t, 20*time.Second, "the replica promoted", func() bool {
		a, err := g.Master()
		return err == nil && a == r.Addr()
	})
	m.Restart()
	poll.Until(t, 20*time.Second, "the old master turned into a replica", func() bool {
		info, err := m.Info("replication")
		return err == nil && strings.Contains(info, "master_port:"+strconv.Itoa(r.port)) &&
			strings.Contains(info, "master_link_status:up")
	})
}

// TestClusterReplica: a replica added to one master replicates it.
func TestClusterReplica(t *testing.T) {
	c := StartCluster(t)
	r := c.AddReplica(t, 1)
	info, err := r.Info("replication")
	if err != nil || !strings.Contains(info, "role:slave") {
		t.Fatalf("INFO replication = %q, %v", info, err)
	}
	info, err = command(c.Addrs()[1], "INFO", "replication")
	if err != nil || !strings.Contains(info, "connected_slaves:1") {
		t.Fatalf("master INFO replication = %q, %v", info, err)
	}
}
