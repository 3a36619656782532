package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/s3store"
)

// BenchmarkReplay compares, in one run, the rate at which a restore
// replays batches (segments read from a file store, checked, decoded and
// applied without the WAL, then flushed) with the rate at which the same
// batches were first written to a database with the WAL on. 64 MiB of
// batches (256 MiB with -restore.long).
//
//	go test -run '^$' -bench Replay -benchtime 3x ./restore/
func BenchmarkReplay(b *testing.B) {
	size := int64(64 * mib)
	if *long {
		size = 256 * mib
	}
	var write, replay time.Duration
	var n int64
	for range b.N {
		root := b.TempDir()
		store := fileStore(b, filepath.Join(root, "bucket"))
		orig := openOriginal(b, filepath.Join(root, "original"))
		latest := synthArchive(b, store, root, size, 16*mib, func(d []byte) { orig.write(b, d) })
		orig.close()
		res, err := Run(context.Background(), store, Options{Dir: filepath.Join(root, "restored"), Logger: quiet()})
		if err != nil || res.Sequence != latest {
			b.Fatalf("restore: %v (at %d, want %d)", err, res.Sequence, latest)
		}
		write += orig.took
		replay += res.Replay
		n += res.BatchBytes
	}
	wr, rr := rate(n, write), rate(n, replay)
	b.ReportMetric(wr, "write-MB/s")
	b.ReportMetric(rr, "replay-MB/s")
	b.ReportMetric(rr/wr, "replay/write")
}

func rate(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// BenchmarkBaseDownload compares, in one run, a restore's download of a
// base (files in parallel, ranged gets, size and SHA-256 checked; the sync
// comes at the end of the restore, not here) with plain objstore.Download
// calls of the same objects into files with the defaults, one file after
// another ("plain"), and four files at a time ("plain4", no check): 6
// files of 24 MiB and 4 small ones.
//
//	go test -run '^$' -bench BaseDownload -benchtime 5x ./restore/
func BenchmarkBaseDownload(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		benchDownload(b, fileStore(b, filepath.Join(b.TempDir(), "bucket")))
	})
	b.Run("minio", func(b *testing.B) {
		srv := miniotest.Shared(b)
		store, err := s3store.New(context.Background(), s3store.Options{Bucket: srv.NewBucket(b), Endpoint: srv.Endpoint,
			Credentials: srv.Credentials(), Region: "us-east-1"})
		if err != nil {
			b.Fatal(err)
		}
		benchDownload(b, store)
	})
}

func benchDownload(b *testing.B, store objstore.Store) {
	fl := synthBase(b, store, []int64{24 * mib, 24 * mib, 24 * mib, 24 * mib, 24 * mib, 24 * mib, 16, 37, 4096, 7022})
	ctx := context.Background()
	var ours, plain, plain4 time.Duration
	for range b.N {
		dir := b.TempDir()
		start := time.Now()
		if err := fetchFiles(ctx, store, fl, filepath.Join(dir, mkdir(b, dir, "ours")), 4, nil); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		start = time.Now()
		plainDownload(b, store, fl, filepath.Join(dir, mkdir(b, dir, "plain")), 1)
		plain += time.Since(start)
		start = time.Now()
		plainDownload(b, store, fl, filepath.Join(dir, mkdir(b, dir, "plain4")), 4)
		plain4 += time.Since(start)
	}
	n := fl.Size() * int64(b.N)
	b.ReportMetric(rate(n, ours), "restore-MB/s")
	b.ReportMetric(rate(n, plain), "plain-MB/s")
	b.ReportMetric(rate(n, plain4), "plain4-MB/s")
	b.ReportMetric(plain.Seconds()/ours.Seconds(), "restore/plain")
	b.ReportMetric(plain4.Seconds()/ours.Seconds(), "restore/plain4")
}

func mkdir(b *testing.B, dir, name string) string {
	if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
		b.Fatal(err)
	}
	return name
}

// plainDownload is objstore.Download of each file with its defaults,
// files at a time.
func plainDownload(b *testing.B, store objstore.Store, fl *manifest.FileList, dir string, files int) {
	err := forEach(context.Background(), files, len(fl.Files), func(ctx context.Context, i int) error {
		f := fl.Files[i]
		out, err := os.Create(filepath.Join(dir, f.Name))
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = objstore.Download(ctx, store, f.Key, out, objstore.DownloadOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// synthBase stores files of random bytes of the given sizes as a base's
// SST files and returns their file list.
func synthBase(b *testing.B, store objstore.Store, sizes []int64) *manifest.FileList {
	rng := rand.New(rand.NewPCG(15, 16))
	fl := &manifest.FileList{Format: manifest.Format, Identity: "bench", Timeline: 1, Created: time.Now()}
	for i, size := range sizes {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		key, _ := manifest.SSTKey(hexSum)
		if _, err := store.Put(context.Background(), key, bytes.NewReader(data), size, objstore.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		fl.Files = append(fl.Files, manifest.File{Name: fmt.Sprintf("%06d.sst", i+10), Size: size, SHA256: hexSum, Key: key})
	}
	if err := fl.Validate(); err != nil {
		b.Fatal(err)
	}
	return fl
}
