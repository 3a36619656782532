package archive

import "slices"

// ReplayChecker is a Source that can tell, from its database's options,
// what rockstream cannot replay by itself: a merge operator or comparator
// of the application's own. Such an archive is whole, but a restore of it
// needs the application's operators (library mode) or a hand-off restore,
// and a standby or verify's drill cannot replay it. The archiver says so
// when it starts and whenever the answer changes (the program restarted
// with other options): in its log, its Stats (ReplayNeeds) and a metric,
// not first at restore time.
type ReplayChecker interface {
	// ReplayNeeds describes each such option, e.g. `column family "x":
	// merge operator "MyOperator"`; none when rockstream replays it all.
	ReplayNeeds() ([]string, error)
}

// checkReplay asks the Source what a replay needs, and logs a change.
func (a *Archiver) checkReplay() {
	rc, ok := a.src.(ReplayChecker)
	if !ok {
		return
	}
	needs, err := rc.ReplayNeeds()
	if err != nil {
		a.log.Warn("cannot read the database's options to tell what a restore of it needs", "error", err)
		return
	}
	if a.replayChecked && slices.Equal(needs, a.replayNeeds) {
		return
	}
	first := !a.replayChecked
	a.replayChecked, a.replayNeeds = true, needs
	a.count(func(s *Stats) { s.ReplayNeeds = slices.Clone(needs) })
	switch {
	case len(needs) > 0:
		a.log.Warn("rockstream cannot replay this database's batches by itself: they need operators of the application's own; "+
			"the archive is whole, but restore it with --hand-off (the application's RocksDB replays the archived WAL at its first open) "+
			"or in library mode with the operators; a standby and verify --drill cannot replay it",
			"needs", needs)
	case !first:
		a.log.Info("the database's options no longer need operators of the application's own: rockstream replays it by itself")
	}
}
