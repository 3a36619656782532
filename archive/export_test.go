package archive

// CachedLists returns the keys of the file lists that a holds in its
// cache, for tests; call it only while a is not running.
func CachedLists(a *Archiver) []string {
	var out []string
	for k := range a.lists {
		out = append(out, k)
	}
	return out
}
