package archive

// The live stream (package stream, Options.Stream): every batch the
// archiver reads is published to the Hub as it is added to the open
// segment, before it is sealed; the Hub serves it to streaming standbys.

// streamStart tells the Hub where reading starts (after each Seek).
func (a *Archiver) streamStart() {
	if h := a.opts.Stream; h != nil {
		if a.m != nil {
			h.SetIdentity(a.m.Identity) // a standby of another database is refused
		}
		h.Start(a.writer.Timeline, a.writer.Epoch, a.next)
	}
}

// streamPosition tells the Hub what the bucket holds and the database's
// head, for its heartbeats.
func (a *Archiver) streamPosition() {
	if h := a.opts.Stream; h != nil {
		a.mu.Lock()
		archived, head := a.stats.ArchivedSequence, max(a.stats.HeadSequence, a.stats.LastSequence)
		a.mu.Unlock()
		h.SetPosition(archived, head)
	}
}
