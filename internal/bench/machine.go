package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rockstream/rockstream/internal/miniotest"
)

// machineFacts describes the machine and the versions, for the report.
func (e *env) machineFacts(ctx context.Context, litestream string) [][2]string {
	facts := [][2]string{
		{"CPU", fmt.Sprintf("%d cores, %s", runtime.NumCPU(), cpuModel())},
		{"Memory", memTotal()},
		{"Work folder", e.cfg.WorkDir + ": " + diskOf(e.cfg.WorkDir)},
		{"Load average at start", loadAvg()},
		{"Go", runtime.Version()},
		{"rockstream", gitRevision(ctx)},
		{"RocksDB", rocksdbVersion(ctx)},
		{"MinIO", minioVersion(ctx)},
	}
	if litestream != "" {
		facts = append(facts, [2]string{"Litestream", firstLine(ctx, litestream, "version") + " (" + litestreamModule + "@" + litestreamVersion + ", built by the harness)"})
	}
	return facts
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "model unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "model unknown"
}

func memTotal() string {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", float64(si.Totalram)*float64(si.Unit)/(1<<30))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ") + " (1, 5, 15 min)"
}

// load1 is the 1-minute load average, -1 if it cannot be read.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return -1
	}
	return l
}

// diskOf names the file system and device of dir, and whether the disk
// rotates.
func diskOf(dir string) string {
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE,FSTYPE,SIZE,AVAIL", "-T", dir).Output()
	if err != nil {
		return "file system unknown"
	}
	f := strings.Fields(string(out))
	if len(f) < 4 {
		return strings.TrimSpace(string(out))
	}
	s := fmt.Sprintf("%s on %s, %s, %s free", f[1], f[0], f[2], f[3])
	dev := strings.TrimPrefix(f[0], "/dev/")
	if b, err := os.ReadFile("/sys/block/" + dev + "/queue/rotational"); err == nil {
		if strings.TrimSpace(string(b)) == "0" {
			s += ", not rotational (SSD or virtual)"
		} else {
			s += ", rotational"
		}
	}
	return s
}

func gitRevision(ctx context.Context) string {
	rev := firstLine(ctx, "git", "rev-parse", "--short=12", "HEAD")
	if out, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
		rev += " with uncommitted changes"
	}
	return rev
}

func rocksdbVersion(ctx context.Context) string {
	v := firstLine(ctx, "dpkg-query", "-W", "-f=${Version}", "librocksdb-dev")
	return "librocksdb-dev " + v + ", grocksdb v1.7.15"
}

// minioVersion is the pinned module version that scripts/setup.sh builds.
func minioVersion(ctx context.Context) string {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "minio-path.sh")
	return "github.com/minio/minio@" + firstLine(ctx, "bash", script, "--version") + " (scripts/setup.sh --test)"
}

func mustBinary() string {
	// The MinIO binary that env started; found the same way.
	p, err := miniotest.Binary()
	if err != nil {
		return "minio"
	}
	return p
}

// firstLine runs a command and returns the first line of its output, or
// what went wrong.
func firstLine(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return fmt.Sprintf("unknown (%s: %v)", name, err)
	}
	return line
}
