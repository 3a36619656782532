package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/cryptstore"
	"github.com/rockstream/rockstream/objstore/location"
)

func keyFileFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "encryption-key-file", EnvVars: []string{"ROCKSTREAM_ENCRYPTION_KEY_FILE"},
		Usage: "encrypt what is archived, and decrypt what is read, with the keys in `FILE` (made by 'rockstream keygen'; " +
			"mode 0600; the first key encrypts, every key decrypts). Needed for every command on an encrypted archive; " +
			"an archive is encrypted from its creation or never"}
}

// openArchive opens the archive location loc, encrypted with the keys of
// --encryption-key-file when the command has that flag and it is set. It
// checks the keys against the archive's manifest, when there is one (a
// new archive is marked encrypted by the archiver that creates it, with
// the first key of the store: objstore.KeyIDs).
func openArchive(ctx context.Context, c *cli.Context, loc string) (objstore.Store, error) {
	store, err := location.Open(ctx, loc, location.Options{})
	if err != nil {
		return nil, err
	}
	var ring *crypt.Keyring
	if path := c.String("encryption-key-file"); path != "" {
		if ring, err = crypt.LoadKeyFile(path); err != nil {
			return nil, usageError{fmt.Errorf("--encryption-key-file: %w", err)}
		}
		store = cryptstore.New(store, ring)
	}
	m, _, err := manifest.Load(ctx, store)
	switch {
	case errors.Is(err, manifest.ErrNoArchive):
	case err != nil:
		return nil, err
	default:
		ids := objstore.KeyIDs(store)
		writing := "" // a writer's key may be new to the archive (a rotation); the hint says how
		if len(ids) > 0 && (c.Command.Name == "archive" || c.Command.Name == "base") {
			writing = ids[0]
		}
		if err := m.CheckKeys(ids, writing); err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", store, err)}
		}
	}
	return store, nil
}

// encryptionText says whether the archive m is encrypted, for check and
// status.
func encryptionText(m *manifest.Manifest) string {
	if !m.Encrypted() {
		return "not encrypted"
	}
	return fmt.Sprintf("encrypted, keys %v", m.Encryption.KeyIDs)
}

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "make an encryption key file for --encryption-key-file",
		ArgsUsage: "FILE",
		Description: "keygen writes a new random 256-bit key to FILE, created with mode 0600, and prints\n" +
			"its id (never the key). Give the file to every command with --encryption-key-file\n" +
			"(or ROCKSTREAM_ENCRYPTION_KEY_FILE): the archiver encrypts every object but the\n" +
			"manifest with it, and restore, verify, standby, status, prune and promote read with\n" +
			"it. Keep a copy apart from the bucket: without the key the archive cannot be read.\n" +
			"--rotate puts a new key first in an existing FILE: objects are written with it from\n" +
			"the archiver's next start, and the older keys stay in the file to read what they\n" +
			"wrote until retention has pruned it. docs/ENCRYPTION.md describes the format.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "rotate", EnvVars: []string{"ROCKSTREAM_ROTATE"}, Usage: "add a new key in front of the keys of an existing FILE"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{fmt.Errorf("keygen takes one argument, the FILE to write; got %q", c.Args().Slice())}
			}
			path := c.Args().First()
			id, err := crypt.Keygen(path, c.Bool("rotate"), time.Now())
			if err != nil {
				return usageError{err}
			}
			verb := "wrote"
			if c.Bool("rotate") {
				verb = "added in front of the older keys of"
			}
			fmt.Fprintf(c.App.Writer, "%s key %s %s (mode 0600); keep a copy apart from the bucket\n", verb, id, path)
			return nil
		},
	}
}

func tokenFileFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "token-file", EnvVars: []string{"ROCKSTREAM_TOKEN_FILE"},
		Usage: "read the admin token from `FILE` (its first line; mode 0600 or 0400), instead of --token"}
}

// tokenOf is the admin token: --token, or the first line of --token-file
// (never both). A token file that others can read is refused, as a key
// file is.
func tokenOf(c *cli.Context) (string, error) {
	path := c.String("token-file")
	if path == "" {
		return c.String("token"), nil
	}
	if c.String("token") != "" {
		return "", usageError{errors.New("--token and --token-file are exclusive: give one")}
	}
	return readTokenFile("--token-file", path)
}

// readTokenFile reads the token in the first line of the file of flag,
// which only its owner may read.
func readTokenFile(flag, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return "", usageError{fmt.Errorf("%s %s: mode %v: it must be a file that only its owner can read; run: chmod 600 %s", flag, path, fi.Mode(), path)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	token, _, _ := strings.Cut(string(data), "\n")
	if token = strings.TrimSpace(token); token == "" {
		return "", usageError{fmt.Errorf("%s %s: its first line is empty", flag, path)}
	}
	return token, nil
}
