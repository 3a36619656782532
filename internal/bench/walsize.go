package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// walSizes are the writers' memtable sizes of the catch-up figures by WAL
// file size: db_bench switches WAL files at each memtable switch, so its
// WAL files are about that large. The first is the reference. The last is
// the shape of a Matrix homeserver: 100 column families (db_bench spreads
// its writes over them at random), each with 256 KiB memtables, so that a
// WAL file holds batches of every family and switches whenever one of them
// fills (with 4 MiB memtables the backlog fills none: one WAL file).
var walSizes = []struct {
	bytes    int64
	families int
	name     string
}{{64 << 20, 1, "64 MiB WAL files"}, {4 << 20, 1, "4 MiB WAL files"}, {256 << 10, 1, "256 KiB WAL files"},
	{256 << 10, 100, "256 KiB memtables in 100 column families"}}

// walSizeDB is a db_bench database of one WAL file size with its file://
// archive.
type walSizeDB struct {
	dir      string
	buffer   int64
	families int
	loc      *location
}

// wsRun is one catch-up of one WAL file size.
type wsRun struct {
	wal      int64 // WAL bytes written for the backlog
	rate     float64
	segments int64
}

// walSize measures the archiver catching up on a backlog that db_bench
// wrote with small, middling and default memtables (256 KiB, 4 MiB and
// 64 MiB WAL files, and 100 column families), on file://: the rate at small
// files against the rate at 64 MiB files of the same run, and the segments
// sealed per GiB; then following db_bench at 10 MB/s (follow.go): the lag
// against the database's head, and the segments.
func (b *bench) walSize(ctx context.Context) error {
	dbs := make([]*walSizeDB, len(walSizes))
	for i, ws := range walSizes {
		d, err := b.walSizeDB(ctx, ws.bytes, ws.families)
		if err != nil {
			return err
		}
		dbs[i] = d
	}
	runs := make([][]wsRun, len(walSizes))
	for run := range b.cfg.Runs {
		for i, d := range dbs {
			b.logf("catch-up at %s: run %d/%d", walSizes[i].name, run+1, b.cfg.Runs)
			prof := ""
			if run == 0 {
				prof = b.profile(wsFigure(walSizes[i].name), "the archiver catching up")
			}
			r, err := b.wsCatchUp(ctx, d, prof)
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], r)
		}
	}
	b.wsRows(runs)
	follows := make([][]wsFollowRun, len(walSizes))
	for run := range b.cfg.Runs {
		for i, d := range dbs {
			b.logf("following at %s: run %d/%d", walSizes[i].name, run+1, b.cfg.Runs)
			r, err := b.wsFollow(ctx, d)
			if err != nil {
				return err
			}
			follows[i] = append(follows[i], r)
		}
	}
	b.wsFollowRows(follows)
	return nil
}

// walSizeDB creates a database with db_bench's memtables of buffer bytes
// in each of its column families, and archives its first base.
func (b *bench) walSizeDB(ctx context.Context, buffer int64, families int) (*walSizeDB, error) {
	d := &walSizeDB{dir: b.path(fmt.Sprintf("ws-db-%d-%d", buffer, families)), buffer: buffer, families: families}
	if err := b.wsBench(ctx, d, "fillrandom", 10000); err != nil {
		return nil, err
	}
	var err error
	if d.loc, err = b.fileLocation(fmt.Sprintf("ws-file-%d-%d", buffer, families)); err != nil {
		return nil, err
	}
	s, err := b.startArchiver(ctx, "archiver-ws", d.dir, d.loc, "")
	if err != nil {
		return nil, err
	}
	return d, s.stop(5 * time.Minute)
}

// wsValue is the value size of db_bench's writes in these figures.
const wsValue = 400

// wsBench runs db_bench's benchmark on d: num writes of batches of 4.
func (b *bench) wsBench(ctx context.Context, d *walSizeDB, benchmark string, num int) error {
	args := b.wsBenchArgs(d, benchmark, num)
	out, err := exec.CommandContext(ctx, "db_bench", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("db_bench %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// wsBenchArgs are db_bench's arguments for wsBench.
func (b *bench) wsBenchArgs(d *walSizeDB, benchmark string, num int) []string {
	args := []string{"--benchmarks=" + benchmark, "--db=" + d.dir, "--wal_ttl_seconds=3600", fmt.Sprintf("--value_size=%d", wsValue),
		"--batch_size=4", "--compression_type=none", "--seed=9", "--threads=1", fmt.Sprintf("--num=%d", dbBenchKeys),
		fmt.Sprintf("--writes=%d", num), fmt.Sprintf("--write_buffer_size=%d", d.buffer)}
	if d.families > 1 {
		args = append(args, fmt.Sprintf("--num_column_families=%d", d.families))
	}
	if benchmark != "fillrandom" {
		args = append(args, "--use_existing_db=1")
	}
	return args
}

// wsCatchUp writes a backlog with db_bench while no archiver runs, then
// times the archiver catching up on it (with a CPU profile into profile,
// unless empty).
func (b *bench) wsCatchUp(ctx context.Context, d *walSizeDB, profile string) (wsRun, error) {
	before, err := walBytes(d.dir)
	if err != nil {
		return wsRun{}, err
	}
	segsBefore, err := countSegments(ctx, d.loc.store)
	if err != nil {
		return wsRun{}, err
	}
	if err := b.wsBench(ctx, d, "overwrite", int(b.cfg.BacklogBytes/(wsValue+16+4))); err != nil {
		return wsRun{}, err
	}
	// The writes of db_bench's flushes and compactions (many more with
	// small memtables) go to disk before the archiver starts, not while
	// it reads.
	syscall.Sync()
	after, err := walBytes(d.dir)
	if err != nil {
		return wsRun{}, err
	}
	target, err := latestSeq(d.dir)
	if err != nil {
		return wsRun{}, err
	}
	c, err := b.catchUp(ctx, d.dir, d.loc, target, profile)
	if err != nil {
		return wsRun{}, err
	}
	segs, err := countSegments(ctx, d.loc.store)
	if err != nil {
		return wsRun{}, err
	}
	r := wsRun{wal: after - before, segments: segs - segsBefore}
	r.rate = float64(r.wal) / 1e6 / c.took.Seconds()
	return r, nil
}

// walBytes is the size of the WAL files of the database in dir, archive/
// included.
func walBytes(dir string) (int64, error) {
	var n int64
	for _, d := range []string{dir, filepath.Join(dir, "archive")} {
		matches, err := filepath.Glob(filepath.Join(d, "*.log"))
		if err != nil {
			return 0, err
		}
		for _, m := range matches {
			fi, err := os.Stat(m)
			if err != nil {
				return 0, err
			}
			n += fi.Size()
		}
	}
	return n, nil
}

// countSegments counts the segment objects of a store.
func countSegments(ctx context.Context, s objstore.Store) (int64, error) {
	var n int64
	for _, err := range s.List(ctx, manifest.SegmentsPrefix, "") {
		if err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

func wsFigure(name string) string { return "Catch-up at " + name + ", file://" }

func (b *bench) wsRows(runs [][]wsRun) {
	rates := make([][]float64, len(runs))
	for i, rs := range runs {
		var perGiB, wal []float64
		for _, r := range rs {
			rates[i] = append(rates[i], r.rate)
			// the last segment, sealed at the stop, is a part of one
			perGiB = append(perGiB, float64(r.segments-1)/(float64(r.wal)/(1<<30)))
			wal = append(wal, float64(r.wal))
		}
		name := walSizes[i].name
		families := ""
		if walSizes[i].families > 1 {
			families = fmt.Sprintf(", --num_column_families=%d", walSizes[i].families)
		}
		note := fmt.Sprintf("db_bench overwrite (--write_buffer_size=%d%s, --wal_ttl_seconds=3600, 400-byte values, batches of 4) writes %s MB of WAL "+
			"while no archiver runs, and sync(2) writes the database's dirty pages out; the archiver (defaults but --nice 0) then catches up on file://, "+
			"timed from its start to its exit after SIGTERM. "+
			"MB/s are 10^6 bytes of WAL files per second.", walSizes[i].bytes, families, report.Num(report.Of(wal).Median/1e6))
		row := report.Row{Figure: wsFigure(name), Unit: "MB/s", Value: report.Of(rates[i]), Note: note}
		if i > 0 {
			row.Baseline = "the same catch-up at 64 MiB WAL files (one column family), in the same runs"
			row.Base = report.Of(rates[0])
			row.Ratio = report.Of(report.Ratios(rates[i], rates[0]))
			row.Goals = []report.Goal{{OnRatio: true, Limit: 0.9, Text: "≥ 0.90× the 64 MiB figure"}}
		}
		b.add(row)
		b.add(report.Row{Figure: "Segment PUTs per GiB of WAL, catch-up at " + name, Unit: "PUT/GiB", Value: report.Of(perGiB),
			Goals: []report.Goal{{AtMost: true, Limit: 64, Text: "≤ 64 PUT per GiB"}},
			Note: "the segments the catch-up above wrote, but the last one (sealed at the stop), per GiB of WAL files: " +
				"while it is behind the archiver seals a segment at 16 MiB of batches only, however small the WAL files."})
	}
}
