// Command sqliteload is the SQLite side of rockstream's lag benchmark: the
// application that Litestream replicates, and the reader of Litestream's
// follower. It is a module of its own (with its SQLite driver,
// modernc.org/sqlite, the one Litestream uses), so that rockstream's go.mod
// holds neither; the harness (internal/bench) builds it at bench time.
//
//	sqliteload init DB
//	sqliteload run --db DB --replica FILE --payload FILE --commit-bytes N \
//	    --period 10ms --warmup 1s --window 2s --runs 3
//
// run commits a transaction every --period (a row of the commit's number
// and time in table lag, and --commit-bytes of payload rows of 1000 bytes
// from --payload) and, at the same time, polls the follower's database
// FILE, opening it afresh each time (Litestream writes its pages directly,
// so a connection's cache cannot be trusted), for the commits that became
// readable. It prints JSON: the commit-to-readable lag of each commit of
// each run, in nanoseconds, and the bytes and seconds of the writes.
package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	_ "modernc.org/sqlite"
)

const rowSize = 1000

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: sqliteload init DB | sqliteload run FLAGS"))
	}
	var err error
	switch os.Args[1] {
	case "init":
		if len(os.Args) != 3 {
			err = fmt.Errorf("usage: sqliteload init DB")
			break
		}
		err = initDB(os.Args[2])
	case "run":
		err = runCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sqliteload:", err)
	os.Exit(1)
}

// open opens the application's database: WAL mode, synchronous NORMAL
// (no sync per commit, as the RocksDB writer), as Litestream advises.
func open(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func initDB(path string) error {
	db, err := open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS lag (c INTEGER PRIMARY KEY, ts INTEGER NOT NULL);
		CREATE TABLE IF NOT EXISTS payload (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
		INSERT OR IGNORE INTO lag VALUES (0, 0);`)
	return err
}

type options struct {
	db, replica, payload   string
	commitBytes, runs      int
	period, warmup, window time.Duration
}

type result struct {
	Runs    [][]int64 `json:"runs"`
	Bytes   int64     `json:"bytes"`
	Seconds float64   `json:"seconds"`
	Commits int64     `json:"commits"`
}

func runCmd(args []string) error {
	var o options
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.db, "db", "", "the application's database")
	fs.StringVar(&o.replica, "replica", "", "the follower's database")
	fs.StringVar(&o.payload, "payload", "", "payload bytes to write")
	fs.IntVar(&o.commitBytes, "commit-bytes", 10000, "payload bytes per commit")
	fs.IntVar(&o.runs, "runs", 3, "runs")
	fs.DurationVar(&o.period, "period", 10*time.Millisecond, "time between commits")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "writes before the first run")
	fs.DurationVar(&o.window, "window", 2*time.Second, "each run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	payload, err := os.ReadFile(o.payload)
	if err != nil || len(payload) < rowSize {
		return fmt.Errorf("payload %s: %v (want at least %d bytes)", o.payload, err, rowSize)
	}
	res, err := measure(o, payload)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
