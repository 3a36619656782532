package deploy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rockstream/rockstream/internal/testenv"
)

// units are the systemd units, by the command that each runs.
var units = map[string]string{
	"archive": "systemd/rockstream-archive@.service",
	"standby": "systemd/rockstream-standby@.service",
}

// envExamples are the settings files of the units, by command.
var envExamples = map[string]string{
	"archive": "systemd/archive.env.example",
	"standby": "systemd/standby.env.example",
}

// drainTimeout is the archiver's bound on a stop (archive.Options'
// DrainTimeout default, which the command uses): every stop timeout of a
// supervisor must be above it.
const drainTimeout = time.Minute

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// rockstream builds ./cmd/rockstream once per test binary and returns its
// path: the units are verified with the real binary in ExecStart, and the
// variables of every file are checked against its --help.
func rockstream(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			binErr = fmt.Errorf("go is not on PATH: %w", err)
			return
		}
		if binDir, binErr = os.MkdirTemp("", "rockstream-deploy-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "rockstream")
		cmd := exec.Command(goTool, "build", "-o", binPath, "../cmd/rockstream")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/rockstream: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	helpMu sync.Mutex
	helps  = map[string]string{}
)

// help is `rockstream COMMAND --help`.
func help(t *testing.T, command string) string {
	t.Helper()
	bin := rockstream(t)
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helps[command]; ok {
		return h
	}
	out, err := exec.Command(bin, command, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("rockstream %s --help: %v\n%s", command, err, out)
	}
	helps[command] = string(out)
	return string(out)
}

var envName = regexp.MustCompile(`\bROCKSTREAM_[A-Z0-9_]+\b`)

// checkEnvNames fails for every ROCKSTREAM_* variable in names that
// `rockstream COMMAND --help` does not list: a misspelt variable is
// silently ignored by the command.
func checkEnvNames(t *testing.T, where, command string, names []string) {
	t.Helper()
	h := help(t, command)
	for _, n := range names {
		if !strings.Contains(h, "$"+n+"]") {
			t.Errorf("%s: %s is not a variable of `rockstream %s` (see its --help)", where, n, command)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exitCodes reads the exit codes from cmd/rockstream/exit.go, so that a
// unit's RestartPreventExitStatus= follows a renumbering.
func exitCodes(t *testing.T) map[string]string {
	t.Helper()
	src := readFile(t, "../cmd/rockstream/exit.go")
	codes := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(exit[A-Z][A-Za-z]*)\s*=\s*(\d+)`).FindAllStringSubmatch(src, -1) {
		codes[m[1]] = m[2]
	}
	for _, name := range []string{"exitFailure", "exitUsage", "exitUnreachable", "exitFenced", "exitCorrupt"} {
		if codes[name] == "" {
			t.Fatalf("cmd/rockstream/exit.go: no constant %s", name)
		}
	}
	return codes
}

// unitFile is a parsed unit: section, key, the values in order (a key may
// repeat).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("line %d: %q: not key=value in a section (this parser knows no continuation lines)", n, line)
			}
			u[section][key] = append(u[section][key], value)
		}
	}
	return u
}

// last is the value of a key that systemd takes: the last one set.
func (u unitFile) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// verifyUnit runs `systemd-analyze verify` on the unit text, installed as
// file (a template, rockstream-NAME@.service) in a new folder and verified
// as its instance "test", and returns what it found wrong: a nonzero exit,
// and every line of its output that names the unit. systemd-analyze exits
// 0 after most warnings (an unknown key, a value it cannot parse: "...,
// ignoring"), so the output is what tells; lines about other units (the
// host's) are only logged.
func verifyUnit(t *testing.T, analyze, file, text string) []string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	instance := strings.Replace(file, "@.", "@test.", 1)
	cmd := exec.Command(analyze, "verify", filepath.Join(dir, instance))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("systemd-analyze verify: %v", err))
	}
	stem := strings.TrimSuffix(file, "@.service")
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, stem):
			problems = append(problems, line)
		default:
			t.Logf("systemd-analyze (not about %s): %s", file, line)
		}
	}
	return problems
}

// withBinary points the unit's ExecStart at bin: verify fails on a
// command that does not exist.
func withBinary(t *testing.T, text, bin string) string {
	t.Helper()
	const installed = "ExecStart=/usr/local/bin/rockstream "
	if strings.Count(text, installed) != 1 {
		t.Fatalf("the unit has no single %q line", installed)
	}
	return strings.Replace(text, installed, "ExecStart="+bin+" ", 1)
}

// TestSystemdVerify runs systemd-analyze verify on each unit, with the
// binary built from this tree, and shows that the check catches a broken
// unit.
func TestSystemdVerify(t *testing.T) {
	analyze := testenv.RequireTool(t, "systemd-analyze")
	bin := rockstream(t)
	for _, command := range []string{"archive", "standby"} {
		file := units[command]
		text := withBinary(t, readFile(t, file), bin)
		t.Run(command, func(t *testing.T) {
			if problems := verifyUnit(t, analyze, filepath.Base(file), text); len(problems) > 0 {
				t.Errorf("systemd-analyze verify %s:\n%s", file, strings.Join(problems, "\n"))
			}
		})
	}
	// The same check on broken copies of the archiver's unit must fail, or
	// the test above passes whatever the unit says.
	text := withBinary(t, readFile(t, units["archive"]), bin)
	broken := map[string]string{
		"unknown key":          strings.Replace(text, "[Service]\n", "[Service]\nRestartPreventExitStatuses=4\n", 1),
		"bad exit status":      regexp.MustCompile(`(?m)^RestartPreventExitStatus=.*$`).ReplaceAllString(text, "RestartPreventExitStatus=fenced"),
		"bad boolean":          strings.Replace(text, "NoNewPrivileges=yes", "NoNewPrivileges=mostly", 1),
		"missing ExecStart":    strings.Replace(text, "ExecStart="+bin+" ", "ExecStart=/nonexistent/rockstream ", 1),
		"unknown section name": strings.Replace(text, "[Install]", "[Instal]", 1),
	}
	for name, b := range broken {
		t.Run("broken/"+name, func(t *testing.T) {
			if b == text {
				t.Fatal("the unit no longer holds what this case breaks")
			}
			problems := verifyUnit(t, analyze, "rockstream-archive@.service", b)
			if len(problems) == 0 {
				t.Fatal("systemd-analyze verify found nothing wrong with a broken unit")
			}
			t.Logf("found, as it should: %s", strings.Join(problems, "; "))
		})
	}
}

// TestSystemdUnits checks what the units must say: the restart policy
// against the command's exit codes, the stop timeout against the drain,
// the hardening, and the variables against --help.
func TestSystemdUnits(t *testing.T) {
	codes := exitCodes(t)
	for command, file := range units {
		t.Run(command, func(t *testing.T) {
			u := parseUnit(t, readFile(t, file))
			if v, _ := u.last("Service", "ExecStart"); !strings.HasPrefix(v, "/usr/local/bin/rockstream "+command) {
				t.Errorf("ExecStart=%s: want /usr/local/bin/rockstream %s", v, command)
			}
			if v, _ := u.last("Service", "Restart"); v != "on-failure" {
				t.Errorf("Restart=%s: want on-failure", v)
			}
			// Fenced (4) must never restart: that is the split brain. Bad
			// usage and a corrupt archive fail the same way every time; a
			// failure and an unreachable store may pass, so they restart.
			var prevent []string
			for _, v := range u["Service"]["RestartPreventExitStatus"] {
				prevent = append(prevent, strings.Fields(v)...)
			}
			for _, name := range []string{"exitFenced", "exitUsage", "exitCorrupt"} {
				if !slices.Contains(prevent, codes[name]) {
					t.Errorf("RestartPreventExitStatus=%s lacks %s (%s)", strings.Join(prevent, " "), codes[name], name)
				}
			}
			for _, name := range []string{"exitFailure", "exitUnreachable"} {
				if slices.Contains(prevent, codes[name]) {
					t.Errorf("RestartPreventExitStatus=%s holds %s (%s), which a restart may cure", strings.Join(prevent, " "), codes[name], name)
				}
			}
			v, _ := u.last("Service", "TimeoutStopSec")
			if d, err := time.ParseDuration(v); err != nil || d <= drainTimeout {
				t.Errorf("TimeoutStopSec=%s: want a duration above the archiver's drain of %v", v, drainTimeout)
			}
			want := map[string]string{
				"Type": "exec", "User": "rockstream", "KillSignal": "SIGTERM",
				"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
				"PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
				"ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
				"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "",
				"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallFilter": "~@privileged",
				"EnvironmentFile": "/etc/rockstream/%i.env", "StateDirectory": "rockstream/%i",
			}
			for key, w := range want {
				if v, ok := u.last("Service", key); !ok || v != w {
					t.Errorf("%s=%s (set: %v): want %s=%s", key, v, ok, key, w)
				}
			}
			if !slices.Contains(u["Service"]["SystemCallFilter"], "@system-service") {
				t.Errorf("SystemCallFilter=%v: want @system-service", u["Service"]["SystemCallFilter"])
			}
			var names []string
			for _, v := range u["Service"]["Environment"] {
				names = append(names, envName.FindAllString(v, -1)...)
			}
			checkEnvNames(t, file, command, names)
		})
	}
}

// assignment is a line of an env file that sets a ROCKSTREAM_* variable,
// or would once uncommented.
var assignment = regexp.MustCompile(`(?m)^#?(ROCKSTREAM_[A-Z0-9_]+)=`)

// TestEnvExamples checks the settings files: every variable they set (or
// show commented out) is the command's, and the required ones are set.
func TestEnvExamples(t *testing.T) {
	required := map[string][]string{
		"archive": {"ROCKSTREAM_DB", "ROCKSTREAM_TO"},
		"standby": {"ROCKSTREAM_FROM"},
	}
	for command, file := range envExamples {
		t.Run(command, func(t *testing.T) {
			text := readFile(t, file)
			var names []string
			for _, m := range assignment.FindAllStringSubmatch(text, -1) {
				names = append(names, m[1])
			}
			if len(names) == 0 {
				t.Fatalf("%s sets no ROCKSTREAM_* variable", file)
			}
			checkEnvNames(t, file, command, names)
			set := map[string]bool{}
			for _, line := range strings.Split(text, "\n") {
				if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
					set[name] = true
				}
			}
			for _, name := range required[command] {
				if !set[name] {
					t.Errorf("%s does not set %s", file, name)
				}
			}
			// The listen address: loopback (nothing on a host needs more).
			if addr := valueOf(text, "ROCKSTREAM_LISTEN"); addr != "" {
				if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
					t.Errorf("%s: ROCKSTREAM_LISTEN=%s: want a loopback address", file, addr)
				}
			}
		})
	}
}

// valueOf is the value of NAME=value in an env file, "" when unset.
func valueOf(text, name string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return v
		}
	}
	return ""
}

// Kubernetes objects, as far as the checks need them.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []struct {
		Name     string    `yaml:"name"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
}

func (c container) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// rockstreamCommand is the rockstream command the container runs, "" for
// another program.
func (c container) rockstreamCommand() string {
	if len(c.Command) > 0 || len(c.Args) == 0 || !strings.HasPrefix(c.Image, "rockstream") {
		return ""
	}
	return c.Args[0]
}

// probePort resolves a probe's port, a number or the name of a port of the
// container.
func (c container) probePort(t *testing.T, p *probe) int {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("container %s: no httpGet probe", c.Name)
	}
	if n, err := strconv.Atoi(p.HTTPGet.Port.Value); err == nil {
		return n
	}
	for _, port := range c.Ports {
		if port.Name == p.HTTPGet.Port.Value {
			return port.ContainerPort
		}
	}
	t.Fatalf("container %s: probe port %q is no port of the container", c.Name, p.HTTPGet.Port.Value)
	return 0
}

// readK8s decodes every document of a manifest file.
func readK8s(t *testing.T, file string) []k8sObject {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, file)))
	var objs []k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if o.Kind == "" {
			t.Fatalf("%s: a document without a kind", file)
		}
		objs = append(objs, o)
	}
}

// workload is the one Deployment or StatefulSet of a manifest file.
func workload(t *testing.T, file, kind string) k8sObject {
	t.Helper()
	var found []k8sObject
	for _, o := range readK8s(t, file) {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d objects of kind %s, want 1", file, len(found), kind)
	}
	return found[0]
}

// checkPod checks what every pod here must have: no root, a read-only root
// file system and no capabilities in every container, a grace period above
// the archiver's drain, and for each rockstream daemon probes on its listen
// address's port (/healthz for liveness, /readyz for readiness) and only
// variables that it knows.
func checkPod(t *testing.T, file string, pod podSpec) map[string]container {
	t.Helper()
	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: the pod's securityContext needs runAsNonRoot: true and a runAsUser other than 0", file)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drainTimeout {
		t.Errorf("%s: terminationGracePeriodSeconds must be above the archiver's drain of %v", file, drainTimeout)
	}
	byName := map[string]container{}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		byName[c.Name] = c
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container %s: want readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities drop ALL", file, c.Name)
		}
		command := c.rockstreamCommand()
		if command == "" {
			continue
		}
		var names []string
		for _, e := range c.Env {
			if envName.MatchString(e.Name) {
				names = append(names, e.Name)
			}
		}
		checkEnvNames(t, file+": container "+c.Name, command, names)
		if command != "archive" && command != "standby" {
			continue
		}
		listen, ok := c.env("ROCKSTREAM_LISTEN")
		if !ok {
			t.Errorf("%s: container %s: no ROCKSTREAM_LISTEN", file, c.Name)
			continue
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			t.Errorf("%s: container %s: ROCKSTREAM_LISTEN=%s: %v", file, c.Name, listen, err)
			continue
		}
		// The kubelet probes the pod's IP: a loopback listener fails them.
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			t.Errorf("%s: container %s: ROCKSTREAM_LISTEN=%s is loopback: the kubelet's probes cannot reach it", file, c.Name, listen)
		}
		for _, pr := range []struct {
			kind, path string
			p          *probe
		}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
			if got := c.probePort(t, pr.p); strconv.Itoa(got) != port {
				t.Errorf("%s: container %s: %s on port %d, but it listens on %s", file, c.Name, pr.kind, got, listen)
			}
			if pr.p.HTTPGet.Path != pr.path {
				t.Errorf("%s: container %s: %s on %s, want %s", file, c.Name, pr.kind, pr.p.HTTPGet.Path, pr.path)
			}
		}
	}
	return byName
}

func TestKubernetesArchiverSidecar(t *testing.T) {
	const file = "kubernetes/archiver-sidecar.yaml"
	sts := workload(t, file, "StatefulSet")
	if r := sts.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("%s: replicas must be 1: one writer of one database", file)
	}
	pod := sts.Spec.Template.Spec
	c := checkPod(t, file, pod)
	archiver, restore := c["rockstream"], c["restore"]
	if archiver.rockstreamCommand() != "archive" {
		t.Fatalf("%s: no container rockstream running `rockstream archive`", file)
	}
	if !slices.ContainsFunc(pod.InitContainers, func(c container) bool { return c.Name == "restore" }) || restore.rockstreamCommand() != "restore" {
		t.Fatalf("%s: no initContainer restore running `rockstream restore`", file)
	}
	for _, flag := range []string{"--if-db-not-exists", "--if-replica-exists"} {
		if !slices.Contains(restore.Args, flag) {
			t.Errorf("%s: the restore lacks %s: it must be a no-op on a restart and on an empty archive", file, flag)
		}
	}
	db, _ := archiver.env("ROCKSTREAM_DB")
	if got := restore.Args[len(restore.Args)-1]; db == "" || got != db {
		t.Errorf("%s: the restore writes %s, the archiver reads ROCKSTREAM_DB=%s", file, got, db)
	}
	// The database read-only in the archiver, its work folder elsewhere on
	// a volume of its own.
	work, _ := archiver.env("ROCKSTREAM_WORK_DIR")
	var workMounted bool
	for _, m := range archiver.VolumeMounts {
		switch {
		case strings.HasPrefix(db, m.MountPath+"/") && !m.ReadOnly:
			t.Errorf("%s: the archiver mounts the database's volume %s read-write: it only reads it", file, m.Name)
		case work != "" && (work == m.MountPath || strings.HasPrefix(work, m.MountPath+"/")):
			workMounted = true
		}
	}
	if !workMounted {
		t.Errorf("%s: ROCKSTREAM_WORK_DIR=%s is on no volume of the archiver (its root file system is read-only)", file, work)
	}
	if id, _ := archiver.env("ROCKSTREAM_WRITER_ID"); !strings.Contains(id, "$(POD_NAME)") {
		t.Errorf("%s: ROCKSTREAM_WRITER_ID=%s: want the pod's stable name in it", file, id)
	}
}

func TestKubernetesStandby(t *testing.T) {
	const file = "kubernetes/standby.yaml"
	d := workload(t, file, "Deployment")
	if r := d.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("%s: replicas must be 1: one standby per volume", file)
	}
	if d.Spec.Strategy.Type != "Recreate" {
		t.Errorf("%s: strategy %q: want Recreate, so that two pods never share the volume", file, d.Spec.Strategy.Type)
	}
	c := checkPod(t, file, d.Spec.Template.Spec)
	sb := c["standby"]
	if sb.rockstreamCommand() != "standby" {
		t.Fatalf("%s: no container standby running `rockstream standby`", file)
	}
	if _, ok := sb.env("ROCKSTREAM_TOKEN"); ok {
		t.Errorf("%s: ROCKSTREAM_TOKEN in the environment: use ROCKSTREAM_TOKEN_FILE", file)
	}
	tokenFile, ok := sb.env("ROCKSTREAM_TOKEN_FILE")
	if !ok {
		t.Fatalf("%s: the standby listens beyond loopback and needs ROCKSTREAM_TOKEN_FILE", file)
	}
	var mounted bool
	for _, m := range sb.VolumeMounts {
		mounted = mounted || strings.HasPrefix(tokenFile, m.MountPath+"/")
	}
	if !mounted {
		t.Errorf("%s: ROCKSTREAM_TOKEN_FILE=%s is on no volume of the container", file, tokenFile)
	}
}

// composeService is a service of docker-compose.yml, as far as the checks
// need it (the YAML merge keys << are resolved by the decoder).
type composeService struct {
	Image       string            `yaml:"image"`
	User        string            `yaml:"user"`
	Restart     string            `yaml:"restart"`
	Command     stringOrList      `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

// stringOrList is a compose command: a list, or one string.
type stringOrList []string

func (l *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	return n.Decode((*[]string)(l))
}

var loopbackURL = regexp.MustCompile(`^http://127\.0\.0\.1:(\d+)(/\S*)$`)

func TestCompose(t *testing.T) {
	const file = "../docker-compose.yml"
	var compose struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, file)), &compose); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for name, s := range compose.Services {
		if !strings.HasPrefix(s.Image, "rockstream") {
			continue
		}
		// Docker cannot exclude exit 4 (fenced) from a restart policy: no
		// policy that restarts forever.
		if r := s.Restart; r == "always" || r == "unless-stopped" {
			t.Errorf("%s: service %s: restart: %s restarts a fenced archiver forever", file, name, r)
		}
		if (s.User == "0" || strings.HasPrefix(s.User, "0:") || s.User == "root") && name != "init-volumes" {
			t.Errorf("%s: service %s runs as root", file, name)
		}
		var command string
		if len(s.Command) > 0 {
			command = s.Command[0]
		}
		if command != "archive" && command != "standby" {
			continue
		}
		var names []string
		for n := range s.Environment {
			if envName.MatchString(n) {
				names = append(names, n)
			}
		}
		checkEnvNames(t, file+": service "+name, command, names)
		// A fenced archiver (a promoted standby is one) must not loop:
		// restarts bounded, on-failure:N.
		if n, ok := strings.CutPrefix(s.Restart, "on-failure:"); s.Restart != "no" && (!ok || n == "0" || n == "") {
			t.Errorf("%s: service %s: restart: %q: want on-failure:N (N>0) or no", file, name, s.Restart)
		}
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= drainTimeout {
			t.Errorf("%s: service %s: stop_grace_period %q: want a duration above the drain of %v (Docker's default is 10s)", file, name, s.StopGracePeriod, drainTimeout)
		}
		if _, ok := s.Environment["ROCKSTREAM_TOKEN"]; ok {
			t.Errorf("%s: service %s: ROCKSTREAM_TOKEN in the environment (docker inspect shows it): use ROCKSTREAM_TOKEN_FILE", file, name)
		}
		listen := s.Environment["ROCKSTREAM_LISTEN"]
		_, port, err := net.SplitHostPort(listen)
		if err != nil {
			t.Errorf("%s: service %s: ROCKSTREAM_LISTEN=%q (the image's HEALTHCHECK reads it): %v", file, name, listen, err)
			continue
		}
		hc := s.Healthcheck
		if hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s: service %s: no healthcheck", file, name)
			continue
		}
		var url []string
		for _, arg := range hc.Test {
			if m := loopbackURL.FindStringSubmatch(arg); m != nil {
				url = m
			}
		}
		switch {
		case url == nil:
			t.Errorf("%s: service %s: healthcheck %q asks no http://127.0.0.1:PORT/ URL", file, name, hc.Test)
		case url[1] != port:
			t.Errorf("%s: service %s: healthcheck on port %s, but it listens on %s", file, name, url[1], listen)
		case url[2] != "/readyz" && url[2] != "/healthz":
			t.Errorf("%s: service %s: healthcheck on %s, want /readyz or /healthz", file, name, url[2])
		}
	}
	for _, name := range []string{"archiver", "standby"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("%s: no service %s", file, name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	text := readFile(t, "../Dockerfile")
	stages := strings.Split(text, "\nFROM ")
	final := stages[len(stages)-1]
	for _, want := range []string{"\nUSER 10001:10001\n", "--uid 10001", "\nHEALTHCHECK ", "ROCKSTREAM_LISTEN", "/healthz", "curl"} {
		if !strings.Contains(final, want) {
			t.Errorf("Dockerfile's final stage lacks %q", strings.TrimSpace(want))
		}
	}
	// USER after the last RUN: what is installed is root's, what runs is not.
	if user := strings.Index(final, "\nUSER "); user < strings.LastIndex(final, "\nRUN ") {
		t.Errorf("Dockerfile: USER must come after the final stage's last RUN")
	}
}
