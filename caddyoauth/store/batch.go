package store

import (
	"context"
	"time"
)

// Write is one write of a batch: a Put of Value under Key, or, when Set is
// not empty, an AddMember of member Key to Set (Value unused). TTL is as
// for Put and AddMember.
type Write struct {
	Set   string
	Key   string
	Value []byte
	TTL   time.Duration
}

// Batcher is an optional interface of a Store that applies several writes
// in one step: one transaction and one append to the file for the file
// store, where a call per write would each take the lock and write the
// file. Issuing a token writes two to six records, so this is the token
// endpoint's hot path. A backend without it is served by WriteBatch one
// call at a time.
type Batcher interface {
	// WriteBatch applies writes in order, with the semantics of Put and
	// AddMember. On an error some writes may have been applied, as with
	// separate calls.
	WriteBatch(ctx context.Context, writes []Write) error
}

// WriteBatch applies writes to s in order: in one step when s implements
// Batcher, else by one Put or AddMember call per write.
func WriteBatch(ctx context.Context, s Store, writes []Write) error {
	if b, ok := s.(Batcher); ok {
		return b.WriteBatch(ctx, writes)
	}
	for _, w := range writes {
		var err error
		if w.Set != "" {
			err = s.AddMember(ctx, w.Set, w.Key, w.TTL)
		} else {
			err = s.Put(ctx, w.Key, w.Value, w.TTL)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
