package main

import (
	"database/sql"
	"fmt"
	"time"
)

// commit is one write: its number, when it was made, and its run (-1 in
// the warm-up).
type commit struct {
	n   int64
	at  int64
	run int
}

// measure writes and reads at the same time and returns the lags by run.
func measure(o options, payload []byte) (result, error) {
	db, err := open(o.db)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	var first int64
	if err := db.QueryRow(`SELECT max(c) FROM lag`).Scan(&first); err != nil {
		return result{}, err
	}
	seen := make(chan map[int64]int64, 1)
	stop := make(chan int64, 1) // the last commit, once the writes end
	go func() { seen <- follow(o.replica, first, stop) }()
	commits, res, err := write(db, o, payload, first+1)
	if err != nil {
		stop <- -1
		<-seen
		return res, err
	}
	stop <- commits[len(commits)-1].n
	vis := <-seen
	res.Runs = make([][]int64, o.runs)
	for _, c := range commits {
		if c.run < 0 {
			continue
		}
		at, ok := vis[c.n]
		if !ok {
			return res, fmt.Errorf("commit %d never became readable on the follower (waited 30 s after the last write)", c.n)
		}
		res.Runs[c.run] = append(res.Runs[c.run], at-c.at)
	}
	return res, nil
}

// write commits every o.period for the warm-up and the runs.
func write(db *sql.DB, o options, payload []byte, next int64) ([]commit, result, error) {
	var res result
	var commits []commit
	start := time.Now()
	end := start.Add(o.warmup + time.Duration(o.runs)*o.window)
	tick := time.NewTicker(o.period)
	defer tick.Stop()
	off := 0
	for now := start; now.Before(end); now = <-tick.C {
		run := -1
		if since := now.Sub(start); since >= o.warmup {
			run = min(int((since-o.warmup)/o.window), o.runs-1)
		}
		at := time.Now().UnixNano()
		n, err := writeCommit(db, next, at, payload, &off, o.commitBytes)
		if err != nil {
			return commits, res, err
		}
		commits = append(commits, commit{n: next, at: at, run: run})
		res.Bytes += n
		res.Commits++
		next++
	}
	res.Seconds = time.Since(start).Seconds()
	return commits, res, nil
}

func writeCommit(db *sql.DB, c, at int64, payload []byte, off *int, size int) (int64, error) {
	tx, err := db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO lag VALUES (?, ?)`, c, at); err != nil {
		return 0, err
	}
	var n int64
	for left := size; left > 0; left -= rowSize {
		if *off+rowSize > len(payload) {
			*off = 0
		}
		if _, err := tx.Exec(`INSERT INTO payload (v) VALUES (?)`, payload[*off:*off+rowSize]); err != nil {
			return 0, err
		}
		*off += rowSize
		n += rowSize
	}
	return n, tx.Commit()
}

// follow polls the follower's database, opened afresh each time, and
// notes when each commit after first became readable, until the commit
// that stop names is (or 30 s after stop).
func follow(path string, first int64, stop chan int64) map[int64]int64 {
	vis := map[int64]int64{}
	last, target := first, int64(-2)
	var deadline time.Time
	for {
		select {
		case target = <-stop:
			deadline = time.Now().Add(30 * time.Second)
		default:
		}
		if target == -1 || target >= 0 && (last >= target || time.Now().After(deadline)) {
			return vis
		}
		last = readNew(path, last, vis)
		time.Sleep(2 * time.Millisecond)
	}
}

// readNew reads the commits after last from the follower's database and
// returns the newest one read. A read that fails (Litestream writing its
// pages at that moment) is tried again at the next poll.
func readNew(path string, last int64, vis map[int64]int64) int64 {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(50)")
	if err != nil {
		return last
	}
	defer db.Close()
	rows, err := db.Query(`SELECT c FROM lag WHERE c > ? ORDER BY c`, last)
	if err != nil {
		return last
	}
	defer rows.Close()
	now := time.Now().UnixNano()
	for rows.Next() {
		var c int64
		if rows.Scan(&c) != nil {
			break
		}
		vis[c] = now
		last = c
	}
	return last
}
