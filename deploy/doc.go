// Package deploy holds no code: the folder holds what runs rockstream as a
// service (systemd units and their settings files, Kubernetes manifests),
// described in deploy/README.md. Its test checks them with the real tools
// where they exist (systemd-analyze verify) and against the command's own
// --help and exit codes, so that they cannot drift from the binary.
package deploy
