package testredis

import (
	"strings"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if r, err := command(s.Addr(), "PING"); err != nil || r != "PONG" {
		t.Fatalf("PING = %q, %v", r, err)
	}
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	s.Stop()
	if _, err := command(s.Addr(), "PING"); err == nil {
		t.Fatal("PING succeeded on a stopped server")
	}
	s.Restart()
	if r, err := command(s.Addr(), "PING"); err != nil || r != "PONG" {
		t.Fatalf("PING after restart = %q, %v", r, err)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs = %v", c.Addrs())
	}
	for _, a := range c.Addrs() {
		info, err := command(a, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_known_nodes:3") {
			t.Fatalf("CLUSTER INFO on %s = %q, %v", a, info, err)
		}
	}
}

func TestSentinel(t *testing.T) {
	m := Start(t)
	s := StartSentinel(t, m, "mymaster")
	info, err := command(s.Addr(), "INFO", "sentinel")
	if err != nil || !strings.Contains(info, "name=mymaster,status=ok,address="+m.Addr()) {
		t.Fatalf("INFO sentinel = %q, %v", info, err)
	}
}
