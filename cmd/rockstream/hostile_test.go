package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// The hostile-content part of the fault suite (docs/RELIABILITY.md): a
// bucket that someone else wrote to. Every command must refuse what it
// cannot trust with a clear error naming the object and the field, write
// nothing, and stay within bounded memory.

const goldenDir = "../../testdata/manifest"

// hostileFile is one file of testdata/manifest/hostile and the field its
// refusal must name.
type hostileFile struct{ name, field string }

var hostileManifests = []hostileFile{
	{"manifest-dotdot-key", "bases[0].file_list"},
	{"manifest-absolute-key", "bases[0].file_list"},
	{"manifest-huge-size", "bases.size"},
	{"manifest-huge-count", "bases[0].file_count"},
	{"manifest-absurd-sequence", "bases[0].sequence"},
	{"manifest-parent-cycle", "timelines[0].parent"},
}

var hostileFileLists = []hostileFile{
	{"files-dotdot-name", "files[3].name"},
	{"files-absolute-name", "files[3].name"},
	{"files-dotdot-key", "files[2].key"},
	{"files-huge-size", "files[0].size"},
}

// TestHostileArchive puts hostile manifests and file lists (from
// testdata/manifest/hostile: '..' and absolute keys and names, huge sizes
// and counts, a parent cycle) and objects over the size limits into an
// archive, and runs status, verify, restore and standby on it: each must
// fail naming the object (and the field), with exit 5, and write nothing.
func TestHostileArchive(t *testing.T) {
	for _, h := range hostileManifests {
		t.Run(h.name, func(t *testing.T) {
			root := t.TempDir()
			writeAll(t, filepath.Join(root, manifest.ManifestKey), readAll(t, filepath.Join(goldenDir, "hostile", h.name+".json")))
			refusedEverywhere(t, root, manifest.ManifestKey, h.field)
		})
	}
	for _, h := range hostileFileLists {
		t.Run(h.name, func(t *testing.T) {
			root := oneBaseArchive(t)
			writeAll(t, filepath.Join(root, listKey), readAll(t, filepath.Join(goldenDir, "hostile", h.name+".json")))
			refusedEverywhere(t, root, listKey, h.field)
		})
	}
	t.Run("manifest over 64 MiB", func(t *testing.T) {
		root := oneBaseArchive(t)
		sparse(t, filepath.Join(root, manifest.ManifestKey), manifest.MaxManifestSize+1)
		refusedEverywhere(t, root, manifest.ManifestKey, "larger than")
	})
	t.Run("files.json over 256 MiB", func(t *testing.T) {
		root := oneBaseArchive(t)
		sparse(t, filepath.Join(root, listKey), manifest.MaxFileListSize+1)
		refusedEverywhere(t, root, listKey, "larger than")
	})
}

// listKey is the key of the golden manifest's first base's file list.
const listKey = "bases/00000001/00000000000003e8/files.json"

// oneBaseArchive is a folder holding the golden manifest cut down to
// timeline 1 and its base at 1000 (whose file list is listKey), with no
// writer: the current timeline is 1, and a standby or a restore of the
// latest state reads listKey.
func oneBaseArchive(t *testing.T) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readAll(t, filepath.Join(goldenDir, "manifest.json")), &m); err != nil {
		t.Fatal(err)
	}
	m["timelines"] = m["timelines"].([]any)[:1]
	m["bases"] = m["bases"].([]any)[:1]
	delete(m, "writer")
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeAll(t, filepath.Join(root, manifest.ManifestKey), b)
	writeAll(t, filepath.Join(root, listKey), readAll(t, filepath.Join(goldenDir, "files.json")))
	return root
}

// sparse makes path a file of size bytes that takes no room.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// refusedEverywhere runs status, verify, restore and a standby bootstrap
// on the archive in root: each must exit 5 naming key and says, without
// a stack trace, and the archive and the target folders must stay as
// they were.
func refusedEverywhere(t *testing.T, root, key, says string) {
	t.Helper()
	url := "file://" + root
	before := treeOf(t, root)
	target := t.TempDir()
	commands := [][]string{
		{"status", "--from", url},
		{"verify", "--from", url},
		{"restore", "--from", url, filepath.Join(target, "restored")},
		{"standby", "--from", url, "--listen=", filepath.Join(target, "standby")},
	}
	for _, args := range commands {
		code, out, rss := runMeasured(t, args...)
		if code != exitCorrupt || !strings.Contains(out, key) || !strings.Contains(out, says) {
			t.Errorf("%s: exit %d, want %d naming %s and %q:\n%s", args[0], code, exitCorrupt, key, says, out)
		}
		noStackTrace(t, out)
		if rss > 200 {
			t.Errorf("%s: peak RSS %.0f MiB", args[0], rss)
		}
	}
	if after := treeOf(t, root); after != before {
		t.Errorf("the commands changed the archive:\n%s\nnow:\n%s", before, after)
	}
	if left, _ := os.ReadDir(target); len(left) != 0 {
		t.Errorf("the refused commands left %v", left)
	}
}

// treeOf lists the files under root with their sizes and times.
func treeOf(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			fmt.Fprintf(&b, "%s %d %d\n", path, fi.Size(), fi.ModTime().UnixNano())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// runMeasured runs rockstream as a process and returns its exit code,
// output and peak resident memory in MiB (from the kernel's rusage).
func runMeasured(t *testing.T, args ...string) (int, string, float64) {
	t.Helper()
	p := startCLI(t, nil, args...)
	code := p.wait(t, time.Minute)
	ru, _ := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rss float64
	if ru != nil {
		rss = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return code, p.out.String(), rss
}

// TestZipBomb replaces a segment of an archive with a decompression bomb:
// a segment whose checksums are all right and whose one zstd block says it
// holds 1 MiB (or 64 MiB, the reader's limit) while its frame expands to
// 4 GiB (RLE blocks: 128 KiB of frame), the frame declaring no size, 4 GiB,
// or the block's size (a lie). verify, restore and standby must refuse it
// naming the segment, within bounded memory: their peak RSS is logged and
// compared with the same command on the healthy archive.
func TestZipBomb(t *testing.T) {
	f := damageFixture(t)
	key := f.keys["segment"]
	_, first, err := manifest.ParseSegmentKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]float64{}
	for _, cmd := range []string{"verify", "restore", "standby"} {
		_, _, base[cmd] = bombCommand(t, cmd, "file://"+f.bucket, f, true)
	}
	for _, bomb := range []struct {
		name     string
		rawLen   uint32
		declared int64 // the frame's content size; 0 for none
	}{
		{"1 MiB block, frame of unknown size", 1 << 20, 0},
		{"64 MiB block, frame that declares 4 GiB", 64 << 20, 4 << 30},
		{"64 MiB block, frame that declares 64 MiB", 64 << 20, 64 << 20},
	} {
		t.Run(bomb.name, func(t *testing.T) {
			root := copyTree(t, f.bucket)
			writeAll(t, filepath.Join(root, key), bombSegment(1, first, bomb.rawLen, zstdBomb(4<<30, bomb.declared)))
			for _, cmd := range []string{"verify", "restore", "standby"} {
				code, out, rss := bombCommand(t, cmd, "file://"+root, f, false)
				if code != exitCorrupt || !strings.Contains(out, key) {
					t.Errorf("%s of a zip bomb: exit %d, want %d naming %s:\n%s", cmd, code, exitCorrupt, key, out)
				}
				noStackTrace(t, out)
				// The reader holds the block's raw bytes, the decoder may
				// hold as much, and the garbage collector lets the heap grow
				// past what is live: three times the block, plus slack.
				limit := base[cmd] + 3*float64(bomb.rawLen>>20) + 32
				t.Logf("%s: refused; peak RSS %.0f MiB (%.0f MiB on the healthy archive): %s", cmd, rss, base[cmd], lastLine(out))
				if rss > limit {
					t.Errorf("%s: peak RSS %.0f MiB, above the healthy run's %.0f MiB + 3 blocks + 32 MiB", cmd, rss, base[cmd])
				}
			}
		})
	}
}

// bombCommand runs verify, restore or a following standby on the archive at
// url and returns its exit code, output and peak RSS. On the healthy
// archive (healthy), the standby is stopped once caught up.
func bombCommand(t *testing.T, cmd, url string, f *damaged, healthy bool) (int, string, float64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	switch cmd {
	case "verify":
		return runMeasured(t, "verify", "--from", url)
	case "restore":
		return runMeasured(t, "restore", "--from", url, dir)
	}
	if code, _, errOut := runCLI(t, "--log-level", "error", "restore", "--from", "file://"+f.bucket, "--to-seq", fmt.Sprint(f.base), dir); code != exitOK {
		t.Fatalf("restore of the healthy archive to the base: %s", errOut)
	}
	addr := freeAddr(t)
	p := startCLI(t, nil, "standby", "--from", url, "--listen", addr, "--poll", "10ms", dir)
	if healthy {
		waitUntilT(t, "the standby to catch up", func() bool { a, _ := standbyApplied(addr); return a == f.latest })
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	code := p.wait(t, time.Minute)
	ru, _ := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return code, p.out.String(), float64(ru.Maxrss) / 1024
}

// zstdBomb is one zstd frame that decodes to size zero bytes, in RLE blocks
// of 128 KiB (4 bytes each). A declared size above 0 goes into the frame
// header (true or not); otherwise it declares nothing.
func zstdBomb(size, declared int64) []byte {
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd} // magic
	const window = 0x38                     // Window_Descriptor: 2^(10+7) = 128 KiB
	if declared > 0 {
		frame = append(frame, 0xc0, window) // Frame_Content_Size of 8 bytes
		frame = binary.LittleEndian.AppendUint64(frame, uint64(declared))
	} else {
		frame = append(frame, 0x00, window)
	}
	const block = 128 << 10
	for left := size; left > 0; left -= block {
		h := uint32(block)<<3 | 1<<1 // RLE block of 128 KiB
		if left <= block {
			h |= 1 // the last one
		}
		frame = append(frame, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return frame
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bombSegment builds, byte by byte from docs/FORMAT.md, a segment of
// timeline tl at first whose one zstd block declares rawLen bytes of one
// batch and stores body; every checksum is right, and the trailer agrees
// with the header.
func bombSegment(tl uint32, first uint64, rawLen uint32, body []byte) []byte {
	le := binary.LittleEndian
	now := uint64(time.Now().UnixNano())
	seg := []byte("\x89RKSEG\r\n")
	seg = le.AppendUint16(seg, 1) // version
	seg = le.AppendUint16(seg, 1) // codec zstd
	seg = le.AppendUint32(seg, 0) // flags
	seg = le.AppendUint64(seg, uint64(tl))
	seg = le.AppendUint64(seg, first)
	seg = le.AppendUint64(seg, now)
	seg = le.AppendUint32(seg, crc32.Checksum(seg[:40], castagnoli))

	blk := []byte("BLCK")
	blk = le.AppendUint32(blk, 0) // index
	blk = le.AppendUint32(blk, 1) // batches
	blk = le.AppendUint32(blk, rawLen)
	blk = le.AppendUint32(blk, uint32(len(body)))
	blk = le.AppendUint32(blk, crc32.Checksum(body, castagnoli))
	blk = le.AppendUint64(blk, first)
	blk = le.AppendUint64(blk, first+1)
	blk = le.AppendUint32(blk, crc32.Checksum(blk[:40], castagnoli))
	seg = append(append(seg, blk...), body...)

	tr := []byte("TRLR")
	tr = le.AppendUint32(tr, 1) // blocks
	tr = le.AppendUint64(tr, 1) // batches
	tr = le.AppendUint64(tr, first+1)
	tr = le.AppendUint64(tr, uint64(rawLen))
	tr = le.AppendUint64(tr, now) // first time
	tr = le.AppendUint64(tr, now) // last time
	tr = le.AppendUint64(tr, uint64(len(seg)+96))
	tr = le.AppendUint64(tr, uint64(tl))
	tr = le.AppendUint64(tr, first)
	tr = le.AppendUint64(tr, now)
	tr = le.AppendUint32(tr, 0) // flags
	tr = le.AppendUint16(tr, 1) // codec
	tr = le.AppendUint16(tr, 1) // version
	tr = le.AppendUint32(tr, crc32.Checksum(tr[:88], castagnoli))
	return append(append(seg, tr...), "RKND"...)
}
