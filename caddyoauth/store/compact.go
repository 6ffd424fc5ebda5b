package store

// Compactor is an optional interface of a Store that keeps overwritten
// and deleted values on disk until it compacts its file (the file store's
// append log).
type Compactor interface {
	// Compact rewrites the store's file so that only live values remain.
	Compact() error
}

// Compact compacts s when it is a Compactor; it reports whether it did.
func Compact(s Store) (bool, error) {
	c, ok := s.(Compactor)
	if !ok {
		return false, nil
	}
	return true, c.Compact()
}
