package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
)

// dbInfo is a database that the harness built.
type dbInfo struct {
	dir     string
	keys    uint64 // its key space
	records uint64 // the records written: scattered(records) for i < records
}

// The scattered order of the built databases.
const buildStep = 7919

// bigDB builds, once, the database of the base and restore figures.
func (b *bench) bigDB(ctx context.Context) (dbInfo, error) {
	if b.db.dir != "" {
		return b.db, nil
	}
	db, err := b.buildDB(b.path("db"), b.cfg.DBBytes, 21)
	if err == nil {
		b.db = db
	}
	return db, err
}

// buildDB writes records once each, in a scattered order, in chunks of up
// to 64 MiB of batches (the WAL off, for speed), flushing and letting RocksDB
// compact after each, until the database's files (SST files compressed
// with RocksDB's default, Snappy) hold size bytes.
func (b *bench) buildDB(dir string, size int64, seed uint64) (dbInfo, error) {
	b.logf("building a database of %d MiB in %s", size>>20, dir)
	keys := uint64(4 * size / valueSize)
	a, err := openApp(dir, keys, seed)
	if err != nil {
		return dbInfo{}, err
	}
	defer a.close()
	db := dbInfo{dir: dir, keys: keys}
	order := a.scattered(buildStep)
	for have := dirSize(dir); have < size; have = dirSize(dir) {
		off := db.records
		chunk := min(64<<20, max(4<<20, (size-have)*5/4)) // Snappy keeps about 4/5 of the batches
		w, err := a.fill(chunk, func(i uint64) uint64 { return order(off + i) }, true, nil)
		if err != nil {
			return db, err
		}
		db.records += uint64(w.ops)
		if err := a.settle(); err != nil {
			return db, err
		}
	}
	return db, nil
}

// bases measures `rockstream base` of the database against RocksDB's
// BackupEngine (`ldb backup`) to a local folder, then the bytes of an
// incremental base after 5% of the keys changed.
func (b *bench) bases(ctx context.Context) error {
	info, err := b.bigDB(ctx)
	if err != nil {
		return err
	}
	db := info.dir
	const figure = "Base upload, file://"
	var ours, ldb []float64
	var first baseLog
	for i := range b.cfg.Runs {
		b.logf("base: run %d/%d", i+1, b.cfg.Runs)
		profile := ""
		if i == 0 {
			profile = b.profile(figure, "`rockstream base`")
		}
		base := func() error {
			bl, d, err := b.takeBase(ctx, db, fmt.Sprintf("base-%d", i), profile)
			if i == 0 {
				first = bl
			}
			ours = append(ours, d.Seconds())
			return err
		}
		backup := func() error {
			_, d, err := b.runProc(ctx, "ldb-backup", "ldb", []string{"--db=" + db, "backup", "--backup_dir=" + b.path(fmt.Sprintf("ldb-backup-%d", i))})
			ldb = append(ldb, d.Seconds())
			return err
		}
		if err := inOrder(i%2 == 1, base, backup); err != nil {
			return err
		}
		if i > 0 {
			os.RemoveAll(b.path(fmt.Sprintf("ldb-backup-%d", i)))
			os.RemoveAll(b.path("stores", fmt.Sprintf("base-%d", i)))
		}
	}
	b.add(report.Row{Figure: figure, Unit: "s", Value: report.Of(ours),
		Baseline: "`ldb backup` (BackupEngine) of the same database to a local folder, runs alternating", Base: report.Of(ldb),
		Ratio: report.Of(report.Ratios(ours, ldb)), Goals: []report.Goal{{OnRatio: true, AtMost: true, Limit: 1.2, Text: "time ≤ 1.2× BackupEngine"}},
		Note: fmt.Sprintf("a database of %s in %d files, each run into an empty archive; the ratio is rockstream's time over BackupEngine's.",
			mib(first.bytes), first.files)})
	return b.incremental(ctx, info, first)
}

// inOrder runs the two functions, the second first when swap.
func inOrder(swap bool, f, g func() error) error {
	if swap {
		f, g = g, f
	}
	if err := f(); err != nil {
		return err
	}
	return g()
}

// incremental changes 5% of the keys and takes a second base into the
// first run's archive: the bytes it uploads against the full base's.
func (b *bench) incremental(ctx context.Context, db dbInfo, full baseLog) error {
	a, err := openApp(db.dir, db.keys, 22)
	if err != nil {
		return err
	}
	order := a.scattered(buildStep)
	every20th := func(i uint64) uint64 { return order(i * 20 % db.records) }
	w, err := a.fill(int64(db.records/20)*(valueSize+20), every20th, false, nil)
	if err == nil {
		err = a.settle()
	}
	a.close()
	if err != nil {
		return err
	}
	incr, _, err := b.takeBase(ctx, db.dir, "base-0", "")
	if err != nil {
		return err
	}
	r := float64(incr.uploaded) / float64(full.uploaded)
	b.add(report.Row{Figure: "Incremental base after 5% of keys change", Unit: "× the full base's bytes", Value: report.Of([]float64{r}),
		Baseline: "the full base (bytes uploaded)", Base: report.Of([]float64{float64(full.uploaded) / (1 << 20)}), BaseUnit: "MiB",
		Goals: []report.Goal{{AtMost: true, Limit: 0.15, Text: "≤ 0.15 of the bytes"}},
		Note: fmt.Sprintf("one run (the bytes do not vary): %s of batches rewrote %d of %d records, then a flush and RocksDB's own compactions; "+
			"the second base uploaded %s in %d files (%d SST files shared) of %s, against %s for the full base.",
			mib(w.bytes), w.ops, db.records, mib(incr.uploaded), incr.files-incr.shared, incr.shared, mib(incr.bytes), mib(full.uploaded))})
	return nil
}

// baseLog is what `rockstream base` logs of the files it stored.
type baseLog struct {
	files, shared   int
	bytes, uploaded int64
}

// takeBase runs `rockstream base` of db into the file store name.
func (b *bench) takeBase(ctx context.Context, db, name, profile string) (baseLog, time.Duration, error) {
	loc, err := b.fileLocation(name)
	if err != nil {
		return baseLog{}, 0, err
	}
	args := []string{"base", "--db", db, "--to", loc.url, "--work-dir", b.path("work", name), "--log-format", "json"}
	if profile != "" {
		args = append(args, "--cpu-profile", profile)
	}
	p, d, err := b.runProc(ctx, "base", b.cfg.Binary, args)
	if err != nil {
		return baseLog{}, d, err
	}
	bl, err := parseBaseLog(p.log())
	return bl, d, err
}

// parseBaseLog finds the "base files stored" line of a JSON log.
func parseBaseLog(log string) (baseLog, error) {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l struct {
			Msg      string `json:"msg"`
			Files    int    `json:"files"`
			Bytes    int64  `json:"bytes"`
			Uploaded int64  `json:"uploaded_bytes"`
			Shared   int    `json:"shared_files"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "base files stored" {
			return baseLog{files: l.Files, shared: l.Shared, bytes: l.Bytes, uploaded: l.Uploaded}, nil
		}
	}
	return baseLog{}, fmt.Errorf("rockstream base logged no \"base files stored\" line:\n%s", log)
}

func mib(n int64) string { return report.Num(float64(n)/(1<<20)) + " MiB" }

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
