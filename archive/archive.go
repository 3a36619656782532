// Package archive is the primary side of rockstream: it reads a RocksDB
// database's write batches as they are written, cuts them into segments,
// uploads them, takes base copies of the database, and keeps the
// manifest's writer record, so that a second writer is fenced.
//
// The database is reached through Source (package rocks provides one that
// reads another process's database from its WAL files and checkpoints it by
// copying its files, with no RocksDB instance, and one over a *grocksdb.DB
// that the program owns);
// the bucket through objstore.Store.
//
// An Archiver holds no state of its own across restarts: at start it
// reads the manifest and the segments of its timeline and continues exactly
// after the last archived batch. See docs/DESIGN.md for the rules it keeps:
// segments are created with if-none-match at the key of their first
// sequence, a hole is recorded in the manifest before any segment after it
// is uploaded, a column family creation or drop that the Source reports
// (FamilyWatcher) is recorded before any segment after its place, and the
// manifest is changed only as its recorded writer.
package archive

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/prune"
	"github.com/rockstream/rockstream/segments"
	"github.com/rockstream/rockstream/stream"
)

// Errors of the archiver.
var (
	// ErrGap is a Source that cannot give the batch that the archive needs
	// next: the WAL that held it is gone.
	ErrGap = errors.New("the WAL needed next is gone")
	// ErrOtherDatabase is an archive that belongs to another database.
	ErrOtherDatabase = errors.New("the archive belongs to another database")
	// ErrWriterActive is an archive whose timeline another archiver writes.
	ErrWriterActive = errors.New("another archiver writes this archive")
	// ErrBaseNotYet is a Source that cannot give a whole checkpoint now,
	// but will later: writes made without the WAL are not flushed yet. The
	// archiver tries again every RetryMax and says why.
	ErrBaseNotYet = errors.New("no whole base can be taken yet")
)

// Source is the database being archived.
type Source interface {
	// Identity is the database's identity (its IDENTITY file).
	Identity() (string, error)
	// Refresh makes the newest writes visible (a secondary catches up).
	Refresh() error
	// Seek makes Next continue with the batch that starts at seq. The
	// first batch that Next returns after Seek must start exactly at seq;
	// when the WAL that holds it is gone, Next fails with an error that
	// wraps ErrGap.
	Seek(seq uint64) error
	// Next returns the next batch; ok is false when there is none yet.
	// The batch's Data stays valid until the next call.
	Next() (b segments.Batch, ok bool, err error)
	// Checkpoint writes a consistent copy of the database into dir, which
	// must not exist, and returns the last sequence the copy contains.
	Checkpoint(dir string) (uint64, error)
}

// Options tune an Archiver. The zero value of each field means its default.
type Options struct {
	// WriterID names this archiver in the manifest. A restart with the
	// same ID continues the archive; another ID needs Takeover. Default:
	// HOSTNAME:WORKDIR.
	WriterID string
	// Takeover lets this archiver replace another writer of the archive's
	// newest timeline (a primary that moved to a new machine). It never
	// takes over a timeline that a promotion ended.
	Takeover bool
	// ClaimEpoch is the epoch that a promotion (package promote) gave
	// WriterID, for the archiver that continues it in the same process:
	// while the manifest names WriterID on its newest timeline with this
	// epoch, the archiver claims that epoch as it is rather than the next
	// one, so that the manifest says what the promotion reported. 0: a
	// restart takes the next epoch.
	ClaimEpoch uint64
	// AllowOtherDatabase archives into an archive of another database
	// identity (after the database was rebuilt from a backup of another).
	AllowOtherDatabase bool
	// SegmentSize seals a segment once its batches reach this many bytes
	// (default 16 MiB). A batch of SegmentSize bytes or more has a segment
	// of its own, of any size (the segment writer cuts a batch larger than
	// a block into fragments).
	SegmentSize int
	// SegmentAge seals a segment this long after its first batch (default
	// 1s), once the archiver has caught up with the database while the
	// segment was open: a read found nothing new, and the database's head
	// (a Source that is a HeadReader) was not beyond what was read. Until
	// then batches wait in the WAL, and the segment is sealed by
	// SegmentSize only, however small the WAL files.
	SegmentAge time.Duration
	// Poll is the wait between two looks at the database when it has no
	// new batch (default 10ms). A look is one read of the WAL file (3 µs)
	// and of the head (nothing more while the reader is in the newest WAL
	// file), a stat of the database folder (a change, such as the next WAL
	// file, is listed at once: a WAL switch is seen at the next look), and
	// at most every 100 ms a listing of the database folder, which
	// costs with its files: 1.2 ms with 2,000 files, 9.8 ms with 16,000
	// (rocks BenchmarkWALTailIdle, 2 cores shared, load 6). Idle, that is
	// about 1.2% of a core with 2,000 files, 10% with 16,000.
	Poll time.Duration
	// BaseInterval takes a base this long after the last (default 24h).
	// Such a base is checkpointed between two reads, then uploaded and
	// committed in the background while segments go on (at most one at a
	// time); a stop abandons its upload.
	BaseInterval time.Duration
	// BaseWALBytes takes a base after this many bytes of batches since the
	// last (default 4 GiB).
	BaseWALBytes int64
	// FenceCheck is how often the manifest is checked for a new writer
	// (default 10s).
	FenceCheck time.Duration
	// WorkDir holds the checkpoints of bases while they upload. Required.
	WorkDir string
	// Queue is the number of sealed segments that wait for upload before
	// reading pauses (default 2). Each holds up to SegmentSize compressed
	// bytes in memory.
	Queue int
	// Concurrency is the number of files a base uploads (and, once it is
	// committed, checks) at once (default 4).
	Concurrency int
	// Compressors is the number of blocks of the open segment that are
	// compressed at once, on goroutines of their own, while reading goes
	// on (segments.WriterOptions.Concurrency; default 2), when the
	// archiver is behind: from its start, and after a segment during which
	// it never caught up (see SegmentAge). Blocks in flight let it catch up
	// on a backlog with more than one core; following a writer, it
	// compresses on the reading goroutine, which costs less CPU, unless it
	// serves a live stream (Stream): then a block's compression must not
	// hold up the batches read after it. Negative: always on the reading
	// goroutine. The segments are the same either
	// way. Each block in flight holds 1 MiB of records, its compressed form
	// and a zstd encoder (about 8 MiB) in memory.
	Compressors int
	// RetryMax bounds the wait between two tries of an upload, and is the
	// wait before a failed base is tried again (default 30s).
	RetryMax time.Duration
	// DrainTimeout bounds a stop: from the moment the archiver sees it,
	// sealing what was read, waiting for room in a full queue and the
	// uploads all share this one deadline (default 60s, inside a service
	// manager's usual stop timeout of 90s). What is not uploaded by then
	// stays in the WAL and is archived at the next start.
	DrainTimeout time.Duration
	// SummaryEvery is the interval of the summary line logged at info:
	// what was archived since the last one, the position and the lag
	// (default 1m; negative: only when Run stops).
	SummaryEvery time.Duration
	// Retention, when set, prunes the archive (package prune) in a
	// goroutine of its own, after the start and every RetentionInterval,
	// as the archive's writer: its As is set to this archiver. A prune that
	// fails is logged and tried again at the next interval; one that finds
	// another writer in the manifest stops the archiver as fenced. Its
	// Logger and Now default to the archiver's.
	Retention *prune.Options
	// RetentionInterval is the time between two prunes (default 1h).
	RetentionInterval time.Duration
	// Progress, if set, is told of a base upload's bytes as they go, from
	// the upload's goroutines (several at once).
	Progress func(done, total int64)
	// Stream, if set, is given every batch as it is read, before its
	// segment is sealed, for streaming standbys (package stream). The
	// archiver never waits for it.
	Stream *stream.Hub
	// OnUpload, if set, is told how long each segment took to upload, from
	// its first try to the one that succeeded (retries and their waits
	// included), on the uploader's goroutine.
	OnUpload func(time.Duration)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// DefaultWorkDir is the work folder of the database in dir when none is
// given: .NAME.rockstream beside it, on the same file system (so that a
// checkpoint's hard links work).
func DefaultWorkDir(dir string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".rockstream")
}

func (o *Options) defaults() error {
	if o.WorkDir == "" {
		return errors.New("archive: no work folder given")
	}
	if o.WriterID == "" {
		host, _ := os.Hostname()
		o.WriterID = host + ":" + o.WorkDir
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.SegmentAge, time.Second)
	def(&o.Poll, 10*time.Millisecond)
	def(&o.BaseInterval, 24*time.Hour)
	def(&o.FenceCheck, 10*time.Second)
	def(&o.RetryMax, 30*time.Second)
	def(&o.DrainTimeout, time.Minute)
	if o.SummaryEvery == 0 {
		o.SummaryEvery = time.Minute
	}
	def(&o.RetentionInterval, time.Hour)
	if o.SegmentSize <= 0 {
		o.SegmentSize = 16 << 20
	}
	if o.BaseWALBytes <= 0 {
		o.BaseWALBytes = 4 << 30
	}
	if o.Queue <= 0 {
		o.Queue = 2
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Compressors == 0 {
		o.Compressors = 2
	}
	o.Compressors = max(o.Compressors, 0)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Archiver ships one database to one archive.
type Archiver struct {
	src   Source
	store objstore.Store
	opts  Options
	log   *slog.Logger

	writer   manifest.Writer // who we are in the manifest
	claimed  bool            // writer is ours (Run); false for TakeBase
	m        *manifest.Manifest
	etag     string
	next     uint64 // the sequence the next batch must start at
	mu       sync.Mutex
	stats    Stats
	summed   Stats // the stats at the last summary line
	lastBase time.Time
	walBytes int64        // batch bytes since the last base
	lastSize atomic.Int64 // bytes of the last segment sealed: the next one's likely size
	segBufs  segBufs      // the buffers of uploaded segments, for the next ones (segbuf.go)
	// sealing is closed when the last segment sealed in the background
	// is queued for upload (nil: none); sealErr its failure (sealbg.go).
	sealing chan struct{}
	sealMu  sync.Mutex
	sealErr error
	stopBy  time.Time  // when a stop must be over (set when Run sees the stop)
	stopMu  sync.Mutex // guards stopBy
	// replayNeeds is the Source's last answer to ReplayNeeds (replayneeds.go).
	replayNeeds   []string
	replayChecked bool
	// behind is true from the start of Run, and after a segment during
	// which the reader never caught up with the database: the archiver is
	// catching up, or the writer writes faster than it reads. Then segments
	// compress their blocks in flight (Options.Compressors).
	behind bool
	// lists caches the file lists of the bases that the manifest named at
	// the last base (a committed base's list never changes).
	lists map[string]*manifest.FileList
	// bg is the base being archived in the background (basebg.go), if any.
	bg *bgBase
	// holeFrom is the first sequence of the hole that this archiver
	// recorded (or found open at its start) and that no committed base
	// ends yet; 0 when none. Every base taken meanwhile ends it (hole.go).
	holeFrom uint64
	// retention runs the scheduled prunes while Run runs.
	retention *retention
	// lag tracks the database's head and what waits for upload (under mu).
	lag lag
}

// Stats counts what an Archiver did.
type Stats struct {
	Timeline uint32 `json:"timeline"`
	Segments int64  `json:"segments"` // segments uploaded: one PUT each that succeeded
	Sealed   int64  `json:"sealed"`   // segments sealed and handed to the uploader
	// SealedByAge counts the segments sealed before they were full (by
	// their age, or before a batch that needs a segment of its own), and
	// SealedByAgeBytes their batch bytes.
	SealedByAge      int64 `json:"sealed_by_age"`
	SealedByAgeBytes int64 `json:"sealed_by_age_bytes"`
	Batches          int64 `json:"batches"`
	BatchBytes       int64 `json:"batch_bytes"`  // uncompressed WAL bytes
	UploadBytes      int64 `json:"upload_bytes"` // segment bytes uploaded
	Retries          int64 `json:"retries"`
	Bases            int64 `json:"bases"`
	Holes            int64 `json:"holes"`
	// ReplayNeeds are the options of the database that rockstream cannot
	// replay by itself (see ReplayChecker); empty when it replays it all.
	ReplayNeeds []string `json:"replay_needs"`
	// LastSequence is the last sequence that the archive holds or has
	// queued: in a segment, or in a base.
	LastSequence uint64 `json:"last_sequence"`
	// ArchivedSequence is the last sequence that the archive holds: in an
	// uploaded segment, or in a base.
	ArchivedSequence uint64 `json:"archived_sequence"`
	// HeadSequence is the database's last sequence: the last complete
	// batch of its newest WAL file as last seen (a Source that is a
	// HeadReader), else LastSequence.
	HeadSequence uint64 `json:"head_sequence"`
	// HeadKnown is true once the archiver has seen where the database's
	// WAL ends (it looks right after it finds where to read from). Until
	// then, and always with a Source that cannot tell (not a HeadReader),
	// HeadSequence is LastSequence and the lag counts only what was read
	// and not uploaded: a lag of 0 then does not say that the archive
	// holds everything.
	HeadKnown bool `json:"head_known"`
	// LagSequences is HeadSequence minus ArchivedSequence: how far the
	// archive is behind the database.
	LagSequences uint64 `json:"lag_sequences"`
	// LagBytes is the WAL bytes the archive lacks: the batch bytes read and
	// not uploaded, plus the bytes of WAL files not read yet up to the head
	// (when the Source can tell).
	LagBytes int64 `json:"lag_bytes"`
	// LagSeconds is how long the oldest write that the archive lacks has
	// waited: since the oldest batch not uploaded yet was read, or since the
	// head was first seen beyond what was read, whichever is earlier; 0
	// when the archive holds everything.
	LagSeconds float64   `json:"lag_seconds"`
	LastUpload time.Time `json:"last_upload"`
	// LastBase is when the newest base of the archive's timelines that
	// this archiver continues was taken (zero when it holds none).
	LastBase time.Time `json:"last_base"`
	// Prunes counts the scheduled prunes that succeeded, PruneErrors those
	// that failed; PrunedObjects and PrunedBytes what their sweeps deleted.
	Prunes        int64 `json:"prunes"`
	PruneErrors   int64 `json:"prune_errors"`
	PrunedObjects int64 `json:"pruned_objects"`
	PrunedBytes   int64 `json:"pruned_bytes"`
}

// New returns an Archiver of src to store.
func New(src Source, store objstore.Store, opts Options) (*Archiver, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	return &Archiver{src: src, store: store, opts: opts, log: opts.Logger, lists: map[string]*manifest.FileList{},
		segBufs: newSegBufs(opts.SegmentSize)}, nil
}

// Stats returns the counters so far; safe to call while Run runs.
func (a *Archiver) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	a.lagStats(&s)
	return s
}

// archived records that the archive holds every batch up to seq.
func (a *Archiver) archived(seq uint64) {
	a.count(func(s *Stats) { s.ArchivedSequence = max(s.ArchivedSequence, seq) })
}

func (a *Archiver) count(fn func(*Stats)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(&a.stats)
}

// Timeline is the timeline the archiver writes (after Run started); safe
// to call while Run runs.
func (a *Archiver) Timeline() uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats.Timeline
}

// fenced wraps manifest.ErrFenced with what happened.
func fenced(format string, args ...any) error {
	return fmt.Errorf("%w: %s", manifest.ErrFenced, fmt.Sprintf(format, args...))
}
