// Command rockstream archives a RocksDB database to object storage and
// restores it to any archived point. Run `rockstream --help`.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/rocks"
)

// version and commit are set at build time with -ldflags "-X
// main.version=v1.2.3 -X main.commit=abc123" (make build sets commit);
// else commit is the one Go stamped, when it did (-buildvcs).
var (
	version string
	commit  string
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	err := runApp(app, args)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(app.ErrWriter, "rockstream: %v\n", err)
	if code == exitUsage {
		fmt.Fprintln(app.ErrWriter, "Run 'rockstream --help' or 'rockstream COMMAND --help' for usage.")
	}
	return code
}

// runApp runs app with args, after unsetting every empty ROCKSTREAM_*
// variable.
func runApp(app *cli.App, args []string) error {
	unsetEmptyEnv()
	return app.Run(args)
}

// unsetEmptyEnv removes the ROCKSTREAM_* variables that are set but empty
// (ROCKSTREAM_TOKEN= from a compose file whose ${TOKEN} is unset): an empty
// variable counts as unset for every flag. The flag library would take an
// empty string or bool variable as set, overriding the config file's value
// (the file's token, and the admin endpoint's auth with it), but an empty
// duration or number as unset.
func unsetEmptyEnv() {
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" && strings.HasPrefix(name, "ROCKSTREAM_") {
			os.Unsetenv(name)
		}
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "rockstream",
		Usage: "archive a live RocksDB to object storage; restore it to any point",
		Description: "rockstream ships a RocksDB database's write-ahead log, in sealed, compressed,\n" +
			"checksummed segments, with base checkpoints and a manifest, to an S3 bucket\n" +
			"(AWS S3, MinIO) or a local folder. Locations are URLs:\n\n" +
			"   file:///ABSOLUTE/PATH\n" +
			"   s3://BUCKET/PREFIX[?endpoint=http://HOST:PORT&region=R&profile=P]\n\n" +
			"S3 credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID and\n" +
			"AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, instance\n" +
			"roles); AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL set a custom endpoint.\n" +
			"Every flag can also be set through the environment variable shown with it\n" +
			"(an empty variable counts as unset).\n\n" +
			exitCodesHelp,
		Version:              buildVersion(),
		Flags:                append(globalFlags(), profileFlag()),
		Before:               setupLogging,
		Commands:             commands(),
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run reports errors
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

func commands() []*cli.Command {
	cmds := []*cli.Command{archiveCommand(), baseCommand(), statusCommand(), checkCommand(), restoreCommand(), verifyCommand(), standbyCommand(), promoteCommand(), pruneCommand(), keygenCommand(), versionCommand()}
	for _, c := range cmds {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
		// The logging flags work after the command name too.
		c.Flags = append(append(c.Flags, globalFlags()...), profileFlag())
		c.Before, c.After = startCommand, stopProfile
	}
	return cmds
}

// buildVersion is the version given at build time, else the module's, with
// the VCS revision when known.
func buildVersion() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return orDev(v)
	}
	if v == "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	v = orDev(v)
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

// buildInfo is what `rockstream version` prints and the metric
// rockstream_build_info carries: the version, the VCS commit (with
// "-modified" when the tree had changes), the Go and RocksDB versions.
type buildInfo struct {
	Version, Commit, Go, RocksDB string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: orUnknown(commit), Go: runtime.Version(), RocksDB: rocks.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok && b.Version == "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	b.Version = orDev(b.Version)
	if ok {
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && b.Commit != "unknown" {
			b.Commit += "-modified"
		}
	}
	return b
}

// buildInfoCollector is the gauge rockstream_build_info, 1, labeled with
// the build's versions: dashboards and alerts see what runs.
func buildInfoCollector() prometheus.Collector {
	b := readBuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rockstream_build_info",
		Help:        "Always 1; the labels say what runs: rockstream's version and commit, the Go and RocksDB versions.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.Go, "rocksdb": b.RocksDB}})
	g.Set(1)
	return g
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit, and the Go and RocksDB versions it was built with",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", EnvVars: []string{"ROCKSTREAM_JSON"}, Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			b := readBuildInfo()
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(map[string]string{
					"version": b.Version, "commit": b.Commit, "go": b.Go, "rocksdb": b.RocksDB})
			}
			fmt.Fprintf(c.App.Writer, "rockstream %s\ncommit     %s\ngo         %s\nrocksdb    %s\n", b.Version, b.Commit, b.Go, b.RocksDB)
			return nil
		},
	}
}

func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

func orDev(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}
