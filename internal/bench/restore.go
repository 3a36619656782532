package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
	"github.com/rockstream/rockstream/objstore"
)

// restoreSetup is the archive that the restore runs read.
type restoreSetup struct {
	file, s3  *location
	baseSeq   uint64
	wal       written // the WAL after the base, as the application wrote it
	keys      uint64  // the key space of the database, for writeRate
	ldbBackup string  // BackupEngine's backup of the database at the base
}

// walSeed is the datagen seed of the WAL after the base: writeRate writes
// the same batches again with it.
const walSeed = 23

// restoreRun is one run of the restore figures.
type restoreRun struct {
	base, ldb         float64 // seconds: base-only restore (file://), ldb restore
	full, get, replay float64 // seconds: full restore (MinIO), plain GET, replay
	baseRSS, fullRSS  float64 // MiB
	write             float64 // MB/s: the application writing the same batches
}

// restores measures `rockstream restore` against `ldb restore`, against a
// plain parallel GET of the same objects, and its replay rate against the
// rate at which the application wrote the same batches.
func (b *bench) restores(ctx context.Context) error {
	setup, err := b.restoreSetup(ctx)
	if err != nil {
		return err
	}
	var runs []restoreRun
	for i := range b.cfg.Runs {
		b.logf("restore: run %d/%d", i+1, b.cfg.Runs)
		r, err := b.restoreRun(ctx, setup, i)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	small, err := b.smallRestoreRSS(ctx)
	if err != nil {
		return err
	}
	b.restoreRows(setup, runs, small)
	return nil
}

// restoreSetup archives the database (a base), backs it up with
// BackupEngine, then writes WALBytes of batches and archives them, to
// file:// and to MinIO.
func (b *bench) restoreSetup(ctx context.Context) (*restoreSetup, error) {
	info, err := b.bigDB(ctx)
	if err != nil {
		return nil, err
	}
	db := info.dir
	s := &restoreSetup{ldbBackup: b.path("ldb-restore-backup")}
	if s.file, err = b.fileLocation("restore"); err != nil {
		return nil, err
	}
	if s.s3, err = b.minioLocation(ctx); err != nil {
		return nil, err
	}
	if s.baseSeq, err = b.archiveAll(ctx, db, s, 0); err != nil {
		return nil, err
	}
	if _, _, err := b.runProc(ctx, "ldb-backup", "ldb", []string{"--db=" + db, "backup", "--backup_dir=" + s.ldbBackup}); err != nil {
		return nil, err
	}
	s.keys = info.keys
	a, err := openApp(db, info.keys, walSeed)
	if err != nil {
		return nil, err
	}
	s.wal, err = a.fill(b.cfg.WALBytes, a.random(), false, nil)
	target := a.seq()
	a.close()
	if err != nil {
		return nil, err
	}
	b.logf("restore: %s of WAL written at %.0f MB/s; archiving it", mib(s.wal.bytes), s.wal.rate())
	_, err = b.archiveAll(ctx, db, s, target)
	return s, err
}

// archiveAll runs an archiver of db into each location until it holds
// target (the first base when 0), and returns the last sequence archived.
func (b *bench) archiveAll(ctx context.Context, db string, s *restoreSetup, target uint64) (uint64, error) {
	var last uint64
	for _, loc := range []*location{s.file, s.s3} {
		a, err := b.startArchiver(ctx, "archiver-restore-"+loc.kind, db, loc, "", "--nice", "0")
		if err != nil {
			return 0, err
		}
		if err := a.waitArchived(ctx, target, 10*time.Minute); err != nil {
			return 0, err
		}
		st, err := a.archiver()
		if err != nil {
			return 0, err
		}
		last = st.Stats.LastSequence
		if err := a.stop(5 * time.Minute); err != nil {
			return 0, err
		}
	}
	return last, nil
}

func (b *bench) restoreRun(ctx context.Context, s *restoreSetup, run int) (restoreRun, error) {
	var r restoreRun
	out := b.path("restored")
	defer os.RemoveAll(out)
	profile := func(figure, label string) string {
		if run > 0 {
			return ""
		}
		return b.profile(figure, label)
	}
	res, err := b.restore(ctx, s.file.url, out, profile(restoreBaseFigure, "`rockstream restore` of the base"), "--to-seq", fmt.Sprint(s.baseSeq))
	if err != nil {
		return r, err
	}
	r.base, r.baseRSS = res.took.Seconds(), float64(res.rss)/(1<<20)
	os.RemoveAll(out)
	_, d, err := b.runProc(ctx, "ldb-restore", "ldb", []string{"restore", "--backup_dir=" + s.ldbBackup, "--db=" + out})
	if err != nil {
		return r, err
	}
	r.ldb = d.Seconds()
	os.RemoveAll(out)
	if res, err = b.restore(ctx, s.s3.url, out, profile(replayFigure, "`rockstream restore` of the base and the WAL, MinIO")); err != nil {
		return r, err
	}
	r.full, r.fullRSS, r.replay = res.took.Seconds(), float64(res.rss)/(1<<20), res.replay.Seconds()
	os.RemoveAll(out)
	start := time.Now()
	if err := plainGet(ctx, s.s3.store, out, 4); err != nil {
		return r, err
	}
	r.get = time.Since(start).Seconds()
	r.write, err = b.writeRate(s)
	return r, err
}

// writeRate writes the batches of the WAL after the base again (same seed,
// same key space, so the same batches), into a new database with WAL on,
// and returns the rate of the DB.Write calls in MB/s: the replay figure's
// baseline, measured in each run.
func (b *bench) writeRate(s *restoreSetup) (float64, error) {
	dir := b.path("write-rate-db")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	a, err := openApp(dir, s.keys, walSeed)
	if err != nil {
		return 0, err
	}
	w, err := a.fill(b.cfg.WALBytes, a.random(), false, nil)
	a.close()
	if err != nil {
		return 0, err
	}
	if w.bytes != s.wal.bytes {
		return 0, fmt.Errorf("write rate: wrote %d bytes of batches, the WAL after the base has %d: not the same batches", w.bytes, s.wal.bytes)
	}
	return w.rate(), nil
}

const (
	restoreBaseFigure = "Restore of the base, file://"
	replayFigure      = "WAL replay rate during restore"
)

// restored is one `rockstream restore`.
type restored struct {
	took, replay time.Duration
	rss          int64
}

// restore runs `rockstream restore --from url [args] dir`.
func (b *bench) restore(ctx context.Context, url, dir, profile string, args ...string) (restored, error) {
	full := append([]string{"restore", "--from", url, "--log-format", "json"}, args...)
	if profile != "" {
		full = append(full, "--cpu-profile", profile)
	}
	p, d, err := b.runProc(ctx, "restore", b.cfg.Binary, append(full, dir))
	if err != nil {
		return restored{}, err
	}
	replay, err := parseReplay(p.log())
	return restored{took: d, replay: replay, rss: p.maxRSS()}, err
}

// parseReplay reads the replay time from the "restored" line of the JSON
// log: seconds, as rockstream writes durations in JSON (the harness runs
// the binary it builds), or Go's text form.
func parseReplay(log string) (time.Duration, error) {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l struct {
			Msg    string          `json:"msg"`
			Replay json.RawMessage `json:"replay"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "restored" {
			continue
		}
		var sec float64
		if json.Unmarshal(l.Replay, &sec) == nil {
			return time.Duration(sec * float64(time.Second)), nil
		}
		var s string
		if json.Unmarshal(l.Replay, &s) == nil {
			return time.ParseDuration(s)
		}
	}
	return 0, fmt.Errorf("rockstream restore logged no \"restored\" line with a replay time:\n%s", log)
}

// plainGet downloads every object of store into dir with objstore.Download
// (its defaults: 8 MiB ranged gets, 4 at a time), n objects at a time:
// the restore's bytes without its checks, ordering or replay.
func plainGet(ctx context.Context, store objstore.Store, dir string, n int) error {
	var keys []string
	for info, err := range store.List(ctx, "", "") {
		if err != nil {
			return err
		}
		keys = append(keys, info.Key)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	errs := make(chan error, len(keys))
	slots := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			errs <- download(ctx, store, key, filepath.Join(dir, fmt.Sprintf("%06d", i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func download(ctx context.Context, store objstore.Store, key, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := objstore.Download(ctx, store, key, f, objstore.DownloadOptions{}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// smallRestoreRSS restores a database of SmallDBBytes (a base only) and
// returns the peak RSS of each run, in MiB.
func (b *bench) smallRestoreRSS(ctx context.Context) ([]float64, error) {
	db := b.path("small-db")
	if _, err := b.buildDB(db, b.cfg.SmallDBBytes, 31); err != nil {
		return nil, err
	}
	if _, _, err := b.takeBase(ctx, db, "small", ""); err != nil {
		return nil, err
	}
	var rss []float64
	out := b.path("restored-small")
	for range b.cfg.Runs {
		res, err := b.restore(ctx, "file://"+b.path("stores", "small"), out, "")
		os.RemoveAll(out)
		if err != nil {
			return nil, err
		}
		rss = append(rss, float64(res.rss)/(1<<20))
	}
	return rss, nil
}

func (b *bench) restoreRows(s *restoreSetup, runs []restoreRun, small []float64) {
	var base, ldb, full, get, replay, write, baseRSS, fullRSS []float64
	for _, r := range runs {
		base, ldb, full, get = append(base, r.base), append(ldb, r.ldb), append(full, r.full), append(get, r.get)
		replay, write = append(replay, float64(s.wal.bytes)/1e6/r.replay), append(write, r.write)
		baseRSS, fullRSS = append(baseRSS, r.baseRSS), append(fullRSS, r.fullRSS)
	}
	b.add(report.Row{Figure: restoreBaseFigure, Unit: "s", Value: report.Of(base),
		Baseline: "`ldb restore` (BackupEngine) of a backup of the same state, from a local folder", Base: report.Of(ldb),
		Ratio: report.Of(report.Ratios(ldb, base)), Goals: []report.Goal{{OnRatio: true, Limit: 0.8, Text: "speed ≥ 0.8× BackupEngine"}},
		Note: fmt.Sprintf("`rockstream restore --to-seq` of the base (%s database) from a file:// archive; the ratio is BackupEngine's time over rockstream's (a speed ratio).", mib(b.cfg.DBBytes))})
	b.add(report.Row{Figure: "Restore of the base and the WAL, MinIO", Unit: "s", Value: report.Of(full),
		Baseline: "plain parallel GET of every object of the archive (objstore.Download, 4 objects at a time)", Base: report.Of(get),
		Ratio: report.Of(report.Ratios(get, full)),
		Note: fmt.Sprintf("base of %s plus %s of WAL; the ratio is the plain GET's time over the restore's: the share of the restore that downloading alone takes.",
			mib(b.cfg.DBBytes), mib(s.wal.bytes))})
	b.add(report.Row{Figure: replayFigure, Unit: "MB/s", Value: report.Of(replay),
		Baseline: "the application's write rate of the same batches (grocksdb, WAL on, no sync)", Base: report.Of(write),
		Ratio: report.Of(report.Ratios(replay, write)), Goals: []report.Goal{{OnRatio: true, Limit: 2, Text: "≥ 2× the write rate"}},
		Note: "the replay phase of the MinIO restore above (from its log), in MB of batches per second: the batches written directly into " +
			"the database opened with its own options, at their sequences, without the WAL (memtables flushed in RocksDB's background threads, " +
			"every family flushed at the end), segments downloaded and decoded meanwhile. The write rate is the time inside DB.Write only " +
			"(not making the keys and values, not the background flushes), the same batches written again in each run into a new database."})
	b.add(report.Row{Figure: "Peak RSS, restore", Unit: "MiB", Value: report.Of(baseRSS),
		Baseline: fmt.Sprintf("the same restore of a database 4× smaller (%s)", mib(b.cfg.SmallDBBytes)), Base: report.Of(small),
		Ratio: report.Of(report.Ratios(baseRSS, small)), Goals: []report.Goal{{OnRatio: true, AtMost: true, Limit: 1.25, Text: "flat: ≤ 1.25× at 4× the size"}},
		Note: fmt.Sprintf("base-only restores from file://. With the WAL (the MinIO restore): %s MiB.", report.Of(fullRSS))})
}
