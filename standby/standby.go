package standby

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/promote"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/stream"
)

// Errors of the package, for errors.Is.
var (
	// ErrNotStandby: the folder is not empty and holds no RocksDB database.
	ErrNotStandby = errors.New("the folder is not empty and holds no RocksDB database")
	// ErrOtherArchive: the folder holds the database of another archive.
	ErrOtherArchive = errors.New("the folder holds another archive's database")
	// ErrRebuild: the standby holds batches that the archive's current
	// history does not; it must be rebuilt from an empty folder.
	ErrRebuild = errors.New("the standby must be rebuilt")
)

// Options tune a Standby.
type Options struct {
	// Dir is the database's folder.
	Dir string
	// Poll is the interval between GETs of the next segment (default
	// 100 ms); MaxPoll the longest it grows to while the archive is idle
	// (default 2 s).
	Poll, MaxPoll time.Duration
	// ManifestCheck is the interval between conditional GETs of the
	// manifest (default 5 s).
	ManifestCheck time.Duration
	// MissingCheck is how long the next segment may stay missing before
	// the standby lists its timeline after it, to tell a segment that was
	// pruned or deleted (later data exists) from an idle archive; then
	// again at intervals that double up to ten times this (default 1 min).
	MissingCheck time.Duration
	// WriterID is the writer ID of the new primary's archiver after a
	// promotion (default DefaultWriterID(Dir)).
	WriterID string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Progress, if set, is told of the bootstrap's bytes as they download.
	Progress func(done, total int64)
	// Labels are constant labels of every metric that Handler serves
	// (the command line sets "database" for each standby of a config file).
	Labels map[string]string
	// Operators are the application's own merge operators (library
	// mode). The standby opens the database with its
	// own options (its OPTIONS file), so merges replay; a merge operator
	// of the application's own that is not here, or a comparator of its
	// own, stops it (rocks.ErrForeignOptions).
	Operators *rocks.Operators
	// Collectors are more metrics for Handler's /metrics, unlabeled (the
	// command line adds rockstream_build_info and the Go and process
	// collectors).
	Collectors []prometheus.Collector
	// ReadyLag is the lag (Status.LagSeconds) up to which a following
	// standby answers GET /readyz with 200 (default 5 min).
	ReadyLag time.Duration
	// Stream, when set, is the client of the primary's live stream
	// (package stream): batches applied as the archiver reads them,
	// before the bucket has them (stream.go). Its From is the standby's.
	Stream *stream.Client
	// StreamDrain bounds how long a promotion waits for the stream to
	// hand over what the old primary's archiver read (default 5s).
	StreamDrain time.Duration
	// CatchUpBytes: a standby behind by at least this many bytes of
	// segments, when it starts or falls behind, replays them as a restore
	// does, several times faster, then follows (catchup.go). Default
	// 32 MiB; negative: never.
	CatchUpBytes int64
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("standby: no folder given")
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.MaxPoll < o.Poll {
		o.MaxPoll = max(2*time.Second, o.Poll)
	}
	if o.ManifestCheck <= 0 {
		o.ManifestCheck = 5 * time.Second
	}
	if o.MissingCheck <= 0 {
		o.MissingCheck = time.Minute
	}
	if o.StreamDrain <= 0 {
		o.StreamDrain = 5 * time.Second
	}
	if o.CatchUpBytes == 0 {
		o.CatchUpBytes = defaultCatchUpBytes
	}
	if o.ReadyLag <= 0 {
		o.ReadyLag = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.WriterID == "" {
		o.WriterID = DefaultWriterID(o.Dir)
	}
	return nil
}

// State is what a Standby is doing.
type State string

// The states, in Status.State (and Promoted).
const (
	Bootstrapping State = "bootstrapping"
	// CatchingUp: started behind a backlog of at least
	// Options.CatchUpBytes, the standby replays it as a restore does
	// (catchup.go) before it follows.
	CatchingUp State = "catching_up"
	Following  State = "following"
	// Ended: the followed timeline has its end marker, but the manifest
	// has named no child timeline for Options.ManifestCheck since (a
	// promotion cut short between its marker and its commit). Status.Reason
	// says more; the standby follows the child as soon as one is committed.
	Ended   State = "ended"
	Stopped State = "stopped"
	Failed  State = "failed"
)

// Status is a snapshot of a Standby (see the package documentation for the
// lag).
type Status struct {
	State    State  `json:"state"`
	Timeline uint32 `json:"timeline"`
	// Applied is the database's latest sequence; AppliedTime the archive
	// time of the last batch applied (zero when none was, by this run).
	Applied     uint64    `json:"applied_sequence"`
	AppliedTime time.Time `json:"applied_time"`
	// Head is the last archived sequence known: from the trailer of the
	// newest segment read, or the bootstrap's.
	Head         uint64  `json:"archive_head"`
	LagSequences uint64  `json:"lag_sequences"`
	LagSeconds   float64 `json:"lag_seconds"`
	// Batches and Segments count what this run applied; Errors the
	// errors met (retried or not).
	Batches  int64 `json:"batches_applied"`
	Segments int64 `json:"segments_applied"`
	Errors   int64 `json:"errors"`
	// Error is the error that stopped it, when State is Failed.
	Error string `json:"error,omitempty"`
	// Reason says why it waits, when State is Ended.
	Reason string `json:"reason,omitempty"`
	// Stream is the live stream's state, when the standby has one.
	Stream *StreamStatus `json:"stream,omitempty"`
	// Promotion is the promotion's result once State is Promoted;
	// PromoteError the error of the last promotion that failed (the
	// standby then goes on following). A client of POST /promote that gave
	// up waiting finds the outcome here.
	Promotion    *promote.Result `json:"promotion,omitempty"`
	PromoteError string          `json:"promote_error,omitempty"`
}

// Standby follows an archive into a local database. Its methods are safe
// for concurrent use; Run is called once.
type Standby struct {
	store objstore.Store
	opts  Options
	log   *slog.Logger

	mu     sync.Mutex
	st     Status
	behind time.Time // archive time the lag counts from, when behind

	// Owned by Run.
	db       *rocks.DB
	from     uint64 // the database's sequence when Run opened it
	txnsRead bool   // the transactions prepared before from were read (txns.go)
	// pend is kept from segment to segment for its buffers (follow.go).
	pend pending
	// zero are the batches without a sequence applied at the Seq where
	// the database is (redeliver.go).
	zero zeroSpan
	// famDueCache is famDue's last answer (families.go).
	famDueCache famDueCache
	m           *manifest.Manifest
	etag        string
	read        time.Time // when the manifest was last read
	// famDone are the column family changes applied or found reflected;
	// famOpen the ids of the database's families, nil when not known
	// (families.go).
	famDone map[famKey]bool
	famOpen map[uint32]bool
	// applyDelay observes, per segment applied, the time from its sealing
	// by the archiver to its last batch applied here.
	applyDelay prometheus.Histogram
	// promotedHere: this Run made the promotion in Status.Promotion
	// (ClaimEpoch).
	promotedHere bool
	// strm is the follow loop's side of the live stream (stream.go);
	// streamBatches, streamKept and streamPaused are under mu.
	strm          streamState
	streamBatches int64
	streamKept    int
	streamFrom    uint64 // the first kept batch's sequence, 0 when none
	bucketEnd     uint64 // the bucket holds the batches up to it, at least
	streamPaused  time.Time

	promoteReq chan *promoteRequest
	done       chan struct{}   // closed when Run returns
	pending    *promoteRequest // answered once the database is closed
}

// New returns a Standby that follows the archive in store into opts.Dir.
func New(store objstore.Store, opts Options) (*Standby, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Standby{store: store, opts: opts, log: opts.Logger, famDone: map[famKey]bool{},
		promoteReq: make(chan *promoteRequest), done: make(chan struct{}), applyDelay: applyDelayHistogram()}
	s.st.State = Bootstrapping
	return s, nil
}

// Status returns the standby's state now.
func (s *Standby) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Stream = s.streamStatus()
	if st.Head > st.Applied {
		st.LagSequences = st.Head - st.Applied
		if !s.behind.IsZero() {
			st.LagSeconds = max(0, time.Since(s.behind).Seconds())
		}
	}
	return st
}

func (s *Standby) update(fn func(st *Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
}

// Run bootstraps the database if needed and follows the archive until ctx
// ends (it then finishes the batch at hand, closes the database and returns
// nil) or an error stops it. What was applied stays applied.
func (s *Standby) Run(ctx context.Context) (err error) {
	defer close(s.done)
	defer func() {
		s.update(func(st *Status) {
			if st.State != Promoted {
				st.State = Stopped
			}
			if err != nil {
				st.State, st.Error = Failed, err.Error()
				st.Errors++
			}
		})
	}()
	m, etag, err := manifest.Load(ctx, s.store)
	if err == nil {
		err = m.CheckStore(s.store)
	}
	if err != nil {
		return fmt.Errorf("standby from %s: %w", s.store, err)
	}
	s.m, s.etag, s.read = m, etag, time.Now()
	tl, err := s.prepare(ctx)
	if errors.Is(err, errPromoted) {
		return nil // promoted before: Promoted reports it
	}
	if err != nil && ctx.Err() != nil {
		return nil // stopped during the bootstrap, which left nothing behind
	}
	if err != nil {
		return err
	}
	if s.db, err = rocks.OpenWritable(s.opts.Dir, rocks.Options{Own: true, Operators: s.opts.Operators}); err != nil {
		return fmt.Errorf("open the standby database %s: %w", s.opts.Dir, err)
	}
	s.from = s.db.LatestSequence()
	if res, ok := s.ownPromotion(tl); ok {
		return s.closePromoted(res)
	}
	fctx, stopStream := context.WithCancel(ctx)
	s.startStream(fctx, tl)
	err = s.follow(ctx, tl)
	stopStream()
	if s.db == nil { // a catch-up failed to open it again
		return err
	}
	promoted := errors.Is(err, errPromoted)
	if promoted {
		// Recorded before the close: the application may open the
		// database as soon as it is closed.
		res, _ := s.Promoted()
		err = RecordPromotion(s.opts.Dir, res)
	}
	// Flushed before the close, so that the folder holds every batch in its
	// SST files, none in its WAL: an application that keeps its WAL in
	// another folder (wal_dir) and opens the folder (promoted, or taken
	// over by hand) would not see the WAL in the folder itself.
	if ferr := s.db.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("flush %s: %w", s.opts.Dir, ferr)
	}
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", s.opts.Dir, cerr)
	}
	if promoted {
		res, _ := s.Promoted()
		if err != nil {
			err = fmt.Errorf("promoted to timeline %d, but: %w", res.Timeline, err)
		}
		s.pending.reply <- promoteReply{res: res, err: err}
		return err
	}
	if ctx.Err() != nil && err == nil {
		s.log.Info("standby stopped", "applied", s.Status().Applied)
	}
	return err
}

// prepare bootstraps an empty folder, or checks that it holds this
// archive's database, and returns the timeline to follow.
func (s *Standby) prepare(ctx context.Context) (uint32, error) {
	dir := s.opts.Dir
	restore.CleanLeftovers(dir, s.log)
	empty, err := isEmpty(dir)
	if err != nil {
		return 0, err
	}
	if empty {
		return s.bootstrap(ctx)
	}
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil {
		return 0, fmt.Errorf("standby into %s: %w", dir, ErrNotStandby)
	}
	id, err := rocks.ReadIdentity(dir)
	if err != nil {
		return 0, fmt.Errorf("standby into %s: %w", dir, err)
	}
	if id != s.m.Identity {
		return 0, fmt.Errorf("standby into %s: %w: its identity is %q, the archive %s is of %q",
			dir, ErrOtherArchive, id, s.store, s.m.Identity)
	}
	doc, found, err := readRecord(dir)
	if err != nil {
		return 0, err
	}
	if doc.Promoted != nil {
		return 0, s.promotedFolder(doc.Promoted)
	}
	return recordedTimeline(dir, s.m, doc, found)
}

// bootstrap restores the latest state of the current timeline into the
// folder.
func (s *Standby) bootstrap(ctx context.Context) (uint32, error) {
	s.log.Info("bootstrapping the standby", "from", s.store.String(), "into", s.opts.Dir)
	// The timeline record goes into the restored folder before its rename
	// into place: no crash can leave the database without it.
	res, err := restore.Run(ctx, s.store, restore.Options{Dir: s.opts.Dir, Logger: s.log, Progress: s.opts.Progress, Operators: s.opts.Operators,
		BeforeInstall: func(tmp string, res restore.Result) error { return writeTimeline(tmp, res.Timeline) }})
	if err != nil {
		return 0, fmt.Errorf("bootstrap the standby: %w", err)
	}
	// The restore read the manifest again: follow the one it restored from,
	// not the one loaded before (a promotion may have come in between).
	m, etag, err := manifest.Load(ctx, s.store)
	if err != nil {
		return 0, fmt.Errorf("standby from %s: %w", s.store, err)
	}
	s.m, s.etag, s.read = m, etag, time.Now()
	s.update(func(st *Status) { st.Head = res.Sequence })
	return res.Timeline, nil
}

func isEmpty(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("standby into %s: %w", dir, err)
	}
	return len(ents) == 0, nil
}
