package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

func profileFlag() cli.Flag {
	return &cli.StringFlag{Name: "cpu-profile", EnvVars: []string{"ROCKSTREAM_CPU_PROFILE"},
		Usage: "write a CPU profile of the command to `FILE` when it ends (read it with 'go tool pprof')"}
}

// profile is the CPU profile being written, if any.
var profile *os.File

// startCommand sets up logging and, with --cpu-profile, starts the CPU
// profile of the command.
func startCommand(c *cli.Context) error {
	if err := setupLogging(c); err != nil {
		return err
	}
	path := flagValue(c, "cpu-profile")
	if path == "" || profile != nil {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return usageError{fmt.Errorf("--cpu-profile: %w", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpu-profile %s: %w", path, err)
	}
	profile = f
	return nil
}

// stopProfile ends the CPU profile, once the command has returned.
func stopProfile(*cli.Context) error {
	if profile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := profile.Close()
	profile = nil
	if err != nil {
		return fmt.Errorf("--cpu-profile: %w", err)
	}
	return nil
}
