package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/rockstream/rockstream/internal/bench/report"
	"github.com/rockstream/rockstream/internal/bench/s3count"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// segmentSize is the archiver's default --segment-size.
const segmentSize = 16 << 20

// segmentPuts is the key of the segment PUTs in s3count.Counts by prefix.
const segmentPuts = s3count.Put + " " + manifest.SegmentsPrefix

// catchUp is one archiver run catching up on a backlog.
type catchUp struct {
	took     time.Duration
	rss      int64
	requests s3count.Counts // by kind and key prefix
}

// tpRun is one run of the throughput figure.
type tpRun struct {
	wal                  int64
	file, minio          catchUp
	zstd, rawFile, rawS3 float64 // MB/s of the baselines
}

// throughput measures the archiver catching up on a WAL backlog (written
// while it was stopped) on file:// and on MinIO, and the baselines on the
// same bytes: zstd alone, and a raw Put of them in segment-sized objects,
// one at a time as the archiver uploads.
func (b *bench) throughput(ctx context.Context) error {
	a, err := openApp(b.path("tp-db"), uint64(b.cfg.BacklogBytes/valueSize), 11)
	if err != nil {
		return err
	}
	defer a.close()
	if _, err := a.fill(1<<20, a.random(), false, nil); err != nil {
		return err
	}
	locs, raws, err := b.tpLocations(ctx)
	if err != nil {
		return err
	}
	for _, loc := range locs { // the first base, before the backlog
		s, err := b.startArchiver(ctx, "archiver-"+loc.kind, a.dir, loc, "")
		if err != nil {
			return err
		}
		if err := s.stop(time.Minute); err != nil {
			return err
		}
	}
	var runs []tpRun
	for i := range b.cfg.Runs {
		b.logf("throughput: run %d/%d", i+1, b.cfg.Runs)
		r, err := b.tpRun(ctx, a, locs, raws, i)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	b.tpRows(runs)
	return nil
}

func (b *bench) tpLocations(ctx context.Context) (locs, raws [2]*location, err error) {
	if locs[0], err = b.fileLocation("tp-file"); err != nil {
		return
	}
	if locs[1], err = b.minioLocation(ctx); err != nil {
		return
	}
	if raws[0], err = b.fileLocation("tp-raw-file"); err != nil {
		return
	}
	raws[1], err = b.minioLocation(ctx)
	return
}

func (b *bench) tpRun(ctx context.Context, a *app, locs, raws [2]*location, run int) (tpRun, error) {
	var backlog []byte
	// Half a segment more than the backlog configured, so that the count of
	// segments sealed by size is not an exact division.
	w, err := a.fill(b.cfg.BacklogBytes+segmentSize/2, a.random(), false, &backlog)
	if err != nil {
		return tpRun{}, err
	}
	r := tpRun{wal: w.bytes}
	target := a.seq()
	for i, loc := range locs {
		profile := ""
		if run == 0 {
			profile = b.profile(tpFigure(loc.kind), "The archiver catching up ("+tpFigure(loc.kind)+", first run)")
		}
		c, err := b.catchUp(ctx, a.dir, loc, target, profile)
		if err != nil {
			return r, err
		}
		if i == 0 {
			r.file = c
		} else {
			r.minio = c
		}
	}
	if r.zstd, err = zstdRate(backlog); err != nil {
		return r, err
	}
	if r.rawFile, err = rawPut(ctx, raws[0].store, backlog, run); err != nil {
		return r, err
	}
	r.rawS3, err = rawPut(ctx, raws[1].store, backlog, run)
	return r, err
}

// catchUp starts the archiver on a backlog and stops it (SIGTERM: it
// uploads what it has read, then exits) once it has read up to target.
// The time runs from its start to its exit.
func (b *bench) catchUp(ctx context.Context, db string, loc *location, target uint64, profile string, extra ...string) (catchUp, error) {
	s, err := b.startArchiver(ctx, "archiver-catchup-"+loc.kind, db, loc, profile, append([]string{"--nice", "0"}, extra...)...)
	if err != nil {
		return catchUp{}, err
	}
	if err := s.waitArchived(ctx, target, 10*time.Minute); err != nil {
		return catchUp{}, err
	}
	if err := s.stop(5 * time.Minute); err != nil {
		return catchUp{}, err
	}
	return catchUp{took: s.ended.Sub(s.started), rss: s.maxRSS(), requests: s.requestsByPrefix()}, nil
}

// zstdRate is the MB/s of zstd EncodeAll on data in 1 MiB blocks, on one
// goroutine, at the segments' level.
func zstdRate(data []byte) (float64, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		return 0, err
	}
	defer enc.Close()
	out := make([]byte, 0, 1<<20)
	start := time.Now()
	for off := 0; off < len(data); off += 1 << 20 {
		out = enc.EncodeAll(data[off:min(off+1<<20, len(data)):min(off+1<<20, len(data))], out[:0])
	}
	return float64(len(data)) / 1e6 / time.Since(start).Seconds(), nil
}

// rawPut puts data in objects of segmentSize, one after another, under the
// keys segments would have, and returns the MB/s; then deletes them.
func rawPut(ctx context.Context, store objstore.Store, data []byte, run int) (float64, error) {
	var keys []string
	start := time.Now()
	for off := 0; off < len(data); off += segmentSize {
		chunk := data[off:min(off+segmentSize, len(data))]
		key := manifest.SegmentKey(uint32(run+1), uint64(off))
		if _, err := store.Put(ctx, key, bytes.NewReader(chunk), int64(len(chunk)), objstore.PutOptions{}); err != nil {
			return 0, fmt.Errorf("raw put baseline: %w", err)
		}
		keys = append(keys, key)
	}
	rate := float64(len(data)) / 1e6 / time.Since(start).Seconds()
	for _, k := range keys {
		if err := store.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return rate, nil
}

func tpFigure(kind string) string {
	if kind == "file" {
		return "Archive throughput, file://"
	}
	return "Archive throughput, MinIO"
}

func (b *bench) tpRows(runs []tpRun) {
	var wal, fileRate, s3Rate, zstdR, rawF, rawS, putsGiB, otherPuts, rss []float64
	for _, r := range runs {
		wal = append(wal, float64(r.wal))
		fileRate = append(fileRate, float64(r.wal)/1e6/r.file.took.Seconds())
		s3Rate = append(s3Rate, float64(r.wal)/1e6/r.minio.took.Seconds())
		zstdR, rawF, rawS = append(zstdR, r.zstd), append(rawF, r.rawFile), append(rawS, r.rawS3)
		segPuts := r.minio.requests[segmentPuts]
		putsGiB = append(putsGiB, float64(segPuts-1)/(float64(r.wal)/(1<<30)))
		otherPuts = append(otherPuts, float64(putsOf(r.minio.requests)-segPuts))
		rss = append(rss, float64(r.file.rss)/(1<<20), float64(r.minio.rss)/(1<<20))
	}
	const note = "the archiver (`rockstream archive`, defaults but `--nice 0`) catches up on %s MB of WAL written while it was stopped; " +
		"the time runs from its start to its exit after SIGTERM (it uploads what it has read first), so it includes start-up and stop. " +
		"MB/s are 10^6 bytes of WAL (write batches) per second."
	goals := []report.Goal{{Limit: 100, Text: "≥ 100 MB/s"}, {OnRatio: true, Limit: 0.5, Text: "≥ 0.5× raw put"}}
	fileNote := fmt.Sprintf(note, report.Num(report.Of(wal).Median/1e6))
	if z := report.Of(zstdR).Median; z < 100 {
		fileNote += fmt.Sprintf(" zstd alone on one goroutine reached %s MB/s on this machine in the same runs, under the 100 MB/s goal: "+
			"the archiver compresses up to two blocks at once while it reads (archive.Options.Compressors), so it passes the goal here "+
			"only when a second core is free of the machine's other load (see the ratio against zstd alone, and the profile).", report.Num(z))
	}
	b.add(report.Row{Figure: tpFigure("file"), Unit: "MB/s", Value: report.Of(fileRate),
		Baseline: "raw Put of the same bytes in 16 MiB objects, one at a time, file store", Base: report.Of(rawF),
		Ratio: report.Of(report.Ratios(fileRate, rawF)), Goals: goals, Note: fileNote})
	b.add(report.Row{Figure: tpFigure("minio"), Unit: "MB/s", Value: report.Of(s3Rate),
		Baseline: "raw PutObject of the same bytes in 16 MiB objects, one at a time, through the same kind of proxy", Base: report.Of(rawS),
		Ratio: report.Of(report.Ratios(s3Rate, rawS)), Goals: goals,
		Note: "as above; MinIO runs on the same cores, and every request goes through the harness's counting proxy on loopback."})
	for _, kind := range []string{"file", "minio"} {
		rates := fileRate
		if kind == "minio" {
			rates = s3Rate
		}
		b.add(report.Row{Figure: tpFigure(kind) + ", against zstd alone", Unit: "MB/s", Value: report.Of(rates),
			Baseline: "zstd EncodeAll of the same bytes (SpeedFastest, 1 MiB blocks, one goroutine)", Base: report.Of(zstdR),
			Ratio: report.Of(report.Ratios(rates, zstdR))})
	}
	b.add(report.Row{Figure: "Segment PUTs per GiB of WAL", Unit: "PUT/GiB", Value: report.Of(putsGiB),
		Goals: []report.Goal{{AtMost: true, Limit: 64, Text: "≤ 64 PUT per GiB"}},
		Note: fmt.Sprintf("the PUTs under segments/ that the archiver sent to MinIO while catching up (counted by the proxy), but the last one, per GiB of WAL: "+
			"--segment-size counts the bytes of batches before compression, so while it catches up the archiver seals a segment every 16 MiB of WAL (64 per GiB), "+
			"and the backlog (%s MB) ends in a part of a segment, sealed by age, which is not counted. One PUT more than that fails the goal. "+
			"While it follows a writer the archiver seals by age instead: see the rows \"Segment PUTs per GiB of WAL, following\". "+
			"Besides them each start of the archiver made %s other PUTs (its probe of the store's conditional writes, and the manifest), which do not grow with the WAL. "+
			"Requests of the first run by key prefix: %s.", report.Num(report.Of(wal).Median/1e6), report.Of(otherPuts), countsList(runs[0].minio.requests))})
	b.add(report.Row{Figure: "Peak RSS, archiver catching up", Unit: "MiB", Value: report.Of(rss),
		Goals: []report.Goal{{AtMost: true, Limit: 128, Text: "≤ 128 MiB"}},
		Note:  "VmHWM (read every 20 ms) of every catch-up run above, file:// and MinIO."})
}

// putsOf is the number of PUTs among counts by kind and prefix.
func putsOf(c s3count.Counts) int64 {
	var n int64
	for k, v := range c {
		if strings.HasPrefix(k, s3count.Put+" ") {
			n += v
		}
	}
	return n
}

// countsList lists counts as "3 PUT segments/, 1 GET manifest.json".
func countsList(c s3count.Counts) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", c[k], strings.TrimSpace(k))
	}
	return strings.Join(parts, ", ")
}
