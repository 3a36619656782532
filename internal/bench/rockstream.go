package bench

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rockstream/rockstream/internal/bench/s3count"
)

// The rockstream processes, run through the CLI as users run them.

// service is a running archiver or standby with its admin endpoint.
type service struct {
	*proc
	addr    string
	proxy   *s3count.Proxy // counts its requests (MinIO only)
	before  s3count.Counts
	beforeP s3count.Counts
}

// freeAddr is a free loopback address for an admin endpoint.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startService starts `rockstream FLAGS --listen ADDR ARGS`, with its
// requests to loc counted by a proxy of its own when loc is MinIO: url is
// the location's URL through that proxy.
func (b *bench) startService(label string, loc *location, args func(url string) (flags, pos []string), profile string) (*service, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &service{addr: addr}
	url := loc.url
	if loc.kind == "minio" {
		if s.proxy, err = b.proxy(); err != nil {
			return nil, err
		}
		url = b.s3URL(loc.bucket, s.proxy)
		s.before, s.beforeP = s.proxy.Counts(), s.proxy.ByPrefix()
	}
	flags, pos := args(url)
	full := append(flags, "--listen", addr, "--log-level", "warn")
	if profile != "" {
		full = append(full, "--cpu-profile", profile)
	}
	full = append(full, pos...)
	name := b.cfg.Binary
	if b.childNice > 0 {
		name, full = "nice", append([]string{"-n", fmt.Sprint(b.childNice), b.cfg.Binary}, full...)
	}
	if s.proc, err = b.start(label, name, full); err != nil {
		return nil, err
	}
	return s, nil
}

// requests are the service's requests since it started.
func (s *service) requests() s3count.Counts {
	if s.proxy == nil {
		return nil
	}
	return s.proxy.Counts().Sub(s.before)
}

// requestsByPrefix are the service's requests since it started, by kind
// and key prefix.
func (s *service) requestsByPrefix() s3count.Counts {
	if s.proxy == nil {
		return nil
	}
	return s.proxy.ByPrefix().Sub(s.beforeP)
}

// archiverStatus is what the harness reads of the archiver's /status.
type archiverStatus struct {
	Stats struct {
		LastSequence     uint64  `json:"last_sequence"`
		ArchivedSequence uint64  `json:"archived_sequence"`
		LagSeconds       float64 `json:"lag_seconds"`
		Batches          int64   `json:"batches"`
	} `json:"stats"`
	// Stream is the live stream's counters (--stream only).
	Stream *struct {
		Clients int   `json:"clients"`
		Served  int64 `json:"streams_served"`
		Batches int64 `json:"batches_sent"`
		Behind  int64 `json:"streams_behind"`
	} `json:"stream"`
}

// startArchiver runs `rockstream archive` on db into loc and waits until
// it serves /status and the archive holds a base.
func (b *bench) startArchiver(ctx context.Context, label, db string, loc *location, profile string, extra ...string) (*service, error) {
	work := b.path("work", fmt.Sprintf("%s-%d", label, b.logSeq+1))
	s, err := b.startService(label, loc, func(url string) ([]string, []string) {
		return append([]string{"archive", "--db", db, "--to", url, "--work-dir", work}, extra...), nil
	}, profile)
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, "the archiver's first base", 5*time.Minute, s.proc, func() bool {
		st, err := s.archiver()
		return err == nil && st.Stats.LastSequence > 0
	})
	return s, err
}

func (s *service) archiver() (archiverStatus, error) {
	var st archiverStatus
	err := getJSON("http://"+s.addr+"/status", &st)
	return st, err
}

// waitStored waits until the archive holds every batch up to seq (its
// segments uploaded, not only read).
func (s *service) waitStored(ctx context.Context, seq uint64, limit time.Duration) error {
	return waitFor(ctx, fmt.Sprintf("the archive to hold sequence %d", seq), limit, s.proc, func() bool {
		st, err := s.archiver()
		return err == nil && st.Stats.ArchivedSequence >= seq
	})
}

// waitArchived waits until the archiver has read up to seq.
func (s *service) waitArchived(ctx context.Context, seq uint64, limit time.Duration) error {
	return waitFor(ctx, fmt.Sprintf("the archiver to reach sequence %d", seq), limit, s.proc, func() bool {
		st, err := s.archiver()
		return err == nil && st.Stats.LastSequence >= seq
	})
}

// standbyStatus is what the harness reads of the standby's /status.
type standbyStatus struct {
	State   string `json:"state"`
	Applied uint64 `json:"applied_sequence"`
	Stream  *struct {
		Connected bool  `json:"connected"`
		Batches   int64 `json:"batches_applied"`
		Connects  int64 `json:"connects"`
	} `json:"stream"`
}

func (s *service) standby() (standbyStatus, error) {
	var st standbyStatus
	err := getJSON("http://"+s.addr+"/status", &st)
	return st, err
}

// startStandby runs `rockstream standby` of loc into dir, polling every
// poll, with the flags extra, and waits until it follows and has applied
// seq.
func (b *bench) startStandby(ctx context.Context, label, dir string, loc *location, poll time.Duration, seq uint64, profile string, extra ...string) (*service, error) {
	s, err := b.startService(label, loc, func(url string) ([]string, []string) {
		return append([]string{"standby", "--from", url, "--poll", poll.String()}, extra...), []string{dir}
	}, profile)
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, fmt.Sprintf("the standby to apply sequence %d", seq), 5*time.Minute, s.proc, func() bool {
		var st standbyStatus
		return getJSON("http://"+s.addr+"/status", &st) == nil && st.State == "following" && st.Applied >= seq
	})
	return s, err
}
