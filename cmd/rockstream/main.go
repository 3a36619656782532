// Command rockstream archives a RocksDB database to object storage and
// restores it to any archived point. Run `rockstream --help`.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

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
	cmds := []*cli.Command{archiveCommand(), baseCommand(), statusCommand(), checkCommand(), restoreCommand(), verifyCommand(), standbyCommand(), promoteCommand(), pruneCommand(), keygenCommand()}
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

func orDev(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}
