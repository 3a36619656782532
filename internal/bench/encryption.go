package bench

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
)

// encRun is one run of the encryption figures: the same backlog archived
// into a plaintext and an encrypted archive on MinIO, then restored from
// each.
type encRun struct {
	wal                   int64
	plain, enc            catchUp
	plainRestore, encRest time.Duration
}

// encryption measures what client-side encryption costs: the archiver
// catching up on one backlog into a plaintext archive and into an
// encrypted one (both on MinIO, in alternating order), and a latest
// restore of each, in the same run.
func (b *bench) encryption(ctx context.Context) error {
	key := b.path("encryption.key")
	os.Remove(key)
	if _, _, err := b.runProc(ctx, "keygen", b.cfg.Binary, []string{"keygen", key}); err != nil {
		return err
	}
	keyArgs := []string{"--encryption-key-file", key}
	a, err := openApp(b.path("enc-db"), uint64(b.cfg.BacklogBytes/valueSize), 13)
	if err != nil {
		return err
	}
	defer a.close()
	if _, err := a.fill(1<<20, a.random(), false, nil); err != nil {
		return err
	}
	var locs [2]*location // plaintext, encrypted
	for i := range locs {
		if locs[i], err = b.minioLocation(ctx); err != nil {
			return err
		}
		var extra []string
		if i == 1 {
			extra = keyArgs
		}
		s, err := b.startArchiver(ctx, "archiver-enc-first", a.dir, locs[i], "", extra...)
		if err != nil {
			return err
		}
		if err := s.stop(time.Minute); err != nil {
			return err
		}
	}
	// Each goes first in half of the runs (an even number), and both start
	// once the disk has written out what came before (sync).
	n := b.cfg.Runs + b.cfg.Runs%2
	var runs []encRun
	for i := range n {
		b.logf("encryption: run %d/%d", i+1, n)
		w, err := a.fill(b.cfg.BacklogBytes, a.random(), false, nil)
		if err != nil {
			return err
		}
		r := encRun{wal: w.bytes}
		target := a.seq()
		for j := range 2 {
			enc := (i+j)%2 == 1 // alternate which goes first
			loc, extra := locs[0], []string{}
			if enc {
				loc, extra = locs[1], keyArgs
			}
			profile := ""
			if i == 0 {
				label := "The archiver catching up into the plaintext archive (first run)"
				if enc {
					label = "The archiver catching up into the encrypted archive (first run)"
				}
				profile = b.profile(encFigure, label)
			}
			// MinIO writes out what the last archiver and restore sent
			// before this one starts: the archive that goes second would
			// otherwise share the disk with that write-back.
			syscall.Sync()
			c, err := b.catchUp(ctx, a.dir, loc, target, profile, extra...)
			if err != nil {
				return err
			}
			out := b.path("enc-restored")
			os.RemoveAll(out)
			res, err := b.restore(ctx, loc.url, out, "", extra...)
			os.RemoveAll(out)
			if err != nil {
				return err
			}
			if enc {
				r.enc, r.encRest = c, res.took
			} else {
				r.plain, r.plainRestore = c, res.took
			}
		}
		runs = append(runs, r)
	}
	var plainRate, encRate, plainRest, encRest []float64
	for _, r := range runs {
		plainRate = append(plainRate, float64(r.wal)/1e6/r.plain.took.Seconds())
		encRate = append(encRate, float64(r.wal)/1e6/r.enc.took.Seconds())
		plainRest = append(plainRest, r.plainRestore.Seconds())
		encRest = append(encRest, r.encRest.Seconds())
	}
	goal := []report.Goal{{OnRatio: true, Limit: 0.9, Text: "≥ 0.9× without encryption"}}
	b.add(report.Row{Figure: encFigure, Unit: "MB/s", Value: report.Of(encRate),
		Baseline: "the same catch-up into a plaintext archive on the same MinIO, same run", Base: report.Of(plainRate),
		Ratio: report.Of(report.Ratios(encRate, plainRate)), Goals: goal,
		Note: fmt.Sprintf("the archiver (`--encryption-key-file`, a key from `rockstream keygen`) catches up on %s MB of WAL written while it was stopped, "+
			"as in \"Archive throughput, MinIO\"; the plaintext and the encrypted archive take turns going first, each in half of the %d runs, "+
			"and each starts after sync(2), once MinIO's disk has written out what came before.", report.Num(float64(runs[0].wal)/1e6), n)})
	// Speed, not time, so that a ratio above 1 is better, as for the rest.
	plainSpeed, encSpeed := inverse(plainRest), inverse(encRest)
	b.add(report.Row{Figure: "Latest restore, MinIO, encrypted", Unit: "s", Value: report.Of(encRest),
		Baseline: "the same restore from the plaintext archive", Base: report.Of(plainRest),
		Ratio: report.Of(report.Ratios(encSpeed, plainSpeed)), Goals: goal,
		Note: "`rockstream restore` of the latest state (the first base and every backlog so far), from each archive, after each catch-up; " +
			"the ratio is the plaintext restore's time over the encrypted one's (its speed against the plaintext's)."})
	return nil
}

const encFigure = "Archive throughput, MinIO, encrypted"

func inverse(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = 1 / x
	}
	return out
}
