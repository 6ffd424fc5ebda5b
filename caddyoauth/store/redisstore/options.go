package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Options says where Redis is and how the store uses it. Its values are
// final: a caller that reads them from a config expands placeholders
// first.
type Options struct {
	// URL of the server: redis://[user:password@]host[:port][/db], or
	// rediss:// for TLS (see rueidis.ParseURL). With Sentinel its host is a
	// Sentinel, with Cluster one more seed node. Required unless Cluster is
	// set.
	URL string

	// TLS connects with TLS even when the URL says redis://.
	TLS bool

	// Sentinel finds the master through Redis Sentinel; nil for none.
	Sentinel *Sentinel

	// Cluster lists host:port seed addresses of a Redis Cluster.
	Cluster []string

	// KeyPrefix is put before every key and set name. Default:
	// DefaultKeyPrefix.
	KeyPrefix string

	// CacheTTL bounds how long Lookup keeps a value cached. Default:
	// DefaultCacheTTL.
	CacheTTL time.Duration

	// ReplicasAck is how many replicas must acknowledge each write of a
	// grant before it counts as done (Store.SetReplicasAck). Default: 0,
	// none waited for.
	ReplicasAck int

	// ReplicasAckTimeout bounds that wait. Default:
	// DefaultReplicasAckTimeout.
	ReplicasAckTimeout time.Duration
}

// Sentinel names the master set and the Sentinels to ask for its address.
// The Sentinels are asked without a password (the URL's credentials are
// for the master) and with the same TLS setting as the master.
type Sentinel struct {
	// Master is the name of the master set the Sentinels monitor.
	// Required.
	Master string `json:"master,omitempty"`
	// Addrs are host:port addresses of Sentinels, besides the URL's host.
	// Default: none.
	Addrs []string `json:"addrs,omitempty"`
}

// Check refuses options that name no server or two kinds of topology.
func (o Options) Check() error {
	switch {
	case o.URL == "" && len(o.Cluster) == 0:
		return errors.New("oauth redis store: needs a url or cluster addresses")
	case o.Sentinel != nil && len(o.Cluster) > 0:
		return errors.New("oauth redis store: sentinel and cluster exclude each other")
	case o.Sentinel != nil && o.Sentinel.Master == "":
		return errors.New("oauth redis store: sentinel needs the name of the master set")
	case o.CacheTTL < 0:
		return errors.New("oauth redis store: cache_ttl must not be negative")
	case o.ReplicasAck < 0:
		return errors.New("oauth redis store: replicas_ack must not be negative")
	case o.ReplicasAckTimeout < 0:
		return errors.New("oauth redis store: replicas_ack_timeout must not be negative")
	case o.ReplicasAckTimeout > 0 && o.ReplicasAck == 0:
		return errors.New("oauth redis store: replicas_ack_timeout needs replicas_ack")
	}
	return nil
}

// ClientOption turns the options into rueidis options, for Open. Its
// errors never quote the URL, which may hold a password.
func (o Options) ClientOption() (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	if o.URL != "" {
		var err error
		opt, err = rueidis.ParseURL(o.URL)
		if err != nil {
			// url.Parse errors quote the whole URL; keep only the reason.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			pw := ""
			if u, perr := url.Parse(o.URL); perr == nil && u.User != nil {
				pw, _ = u.User.Password()
			}
			return opt, fmt.Errorf("oauth redis store: invalid url: %s", Scrub(err.Error(), pw))
		}
	}
	opt.InitAddress = append(opt.InitAddress, o.Cluster...)
	sentinel := o.Sentinel != nil && o.Sentinel.Master != ""
	if sentinel {
		opt.InitAddress = append(opt.InitAddress, o.Sentinel.Addrs...)
		opt.Sentinel.MasterSet = o.Sentinel.Master
	}
	if o.TLS && opt.TLSConfig == nil {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if opt.TLSConfig != nil {
		// ParseURL names the URL's host as the server, which is wrong for
		// every other node, Sentinel or master; left empty, crypto/tls
		// verifies each connection against the host it dials.
		opt.TLSConfig.ServerName = ""
		if sentinel {
			opt.Sentinel.TLSConfig = opt.TLSConfig.Clone()
		}
	}
	return opt, nil
}

// Describe names the servers of opt for error messages, without secrets.
func Describe(opt rueidis.ClientOption) string {
	return strings.Join(opt.InitAddress, ",")
}

// Scrub removes a password from s, in plain and URL-escaped form, in case
// an error from below ever quotes it.
func Scrub(s, password string) string {
	if password == "" {
		return s
	}
	s = strings.ReplaceAll(s, password, "xxxxx")
	s = strings.ReplaceAll(s, url.QueryEscape(password), "xxxxx")
	return strings.ReplaceAll(s, url.PathEscape(password), "xxxxx")
}
