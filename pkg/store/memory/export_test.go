package memory

// Len returns how many requests s holds, expired ones included.
func Len(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}
