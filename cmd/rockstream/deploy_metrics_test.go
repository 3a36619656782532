package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rockstream/rockstream/internal/testenv"
)

// The operator kit's Prometheus rules, their unit tests and the Grafana
// dashboard, from cmd/rockstream (where go test runs).
const (
	deployRules     = "../../deploy/prometheus/rules.yml"
	deployRulesTest = "../../deploy/prometheus/rules_test.yml"
	deployDashboard = "../../deploy/grafana/rockstream.json"
)

// TestPrometheusRules: the alerting rules pass `promtool check rules`,
// their unit tests pass `promtool test rules`, and every alert has a test
// where it fires and one where it stays quiet.
func TestPrometheusRules(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", deployRules}, {"test", "rules", deployRulesTest}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	alerts, err := deployAlerts()
	if err != nil {
		t.Fatal(err)
	}
	fires, quiet, err := deployAlertTests()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("%s: no test in %s where it fires (an alert_rule_test with exp_alerts)", a, deployRulesTest)
		}
		if !quiet[a] {
			t.Errorf("%s: no test in %s where it stays quiet (an alert_rule_test with exp_alerts: [])", a, deployRulesTest)
		}
	}
	for a := range fires {
		if !slices.Contains(alerts, a) {
			t.Errorf("%s tests %s, which %s does not define", deployRulesTest, a, deployRules)
		}
	}
}

// deployAlerts returns the alerts of rules.yml, and an error when one lacks
// for, a severity, a summary or a description.
func deployAlerts() ([]string, error) {
	var f struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				For         *string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	b, err := os.ReadFile(deployRules)
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", deployRules, err)
	}
	var alerts, bad []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			var lacks []string
			if r.For == nil {
				lacks = append(lacks, "for")
			}
			if r.Labels["severity"] == "" {
				lacks = append(lacks, "labels.severity")
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					lacks = append(lacks, "annotations."+a)
				}
			}
			if lacks != nil {
				bad = append(bad, fmt.Sprintf("%s lacks %s", r.Alert, strings.Join(lacks, ", ")))
			}
		}
	}
	if len(alerts) == 0 {
		return nil, fmt.Errorf("%s: no alerts", deployRules)
	}
	if bad != nil {
		return alerts, fmt.Errorf("%s: %s", deployRules, strings.Join(bad, "; "))
	}
	return alerts, nil
}

// deployAlertTests returns the alerts that rules_test.yml expects to fire
// at some eval_time, and those it expects quiet at some eval_time.
func deployAlertTests() (fires, quiet map[string]bool, err error) {
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	b, err := os.ReadFile(deployRulesTest)
	if err != nil {
		return nil, nil, err
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", deployRulesTest, err)
	}
	fires, quiet = map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	return fires, quiet, nil
}

// grafanaDashboard is what the tests read of the dashboard.
type grafanaDashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

func readDashboard(t *testing.T) (grafanaDashboard, []grafanaPanel) {
	t.Helper()
	b, err := os.ReadFile(deployDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", deployDashboard, err)
	}
	var all []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, all
}

// TestGrafanaDashboard: the dashboard parses, has the variables datasource
// (Prometheus), instance and database, and each of its panels has an id of
// its own and queries (but rows) with an expression, on ${datasource}.
func TestGrafanaDashboard(t *testing.T) {
	d, panels := readDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (datasource references by uid)", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Name == "datasource" && v.Query != "prometheus" {
			t.Errorf("variable datasource: query %v, want prometheus", v.Query)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "instance": "query", "database": "query"} {
		if vars[name] != typ {
			t.Errorf("no variable %s of type %s: %v", name, typ, vars)
		}
	}
	if len(panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]string{}
	for _, p := range panels {
		if p.ID == 0 {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share the id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want the uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		for i, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %d (%s) has no expr", p.Title, i, tg.RefID)
			}
		}
	}
}

// TestGrafanaDashboardPromQL: every query of the dashboard parses as
// PromQL (promtool check rules on a recording rule per query, Grafana's
// variables replaced by values).
func TestGrafanaDashboardPromQL(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool")
	_, panels := readDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*", "$database", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range panels {
		for i, tg := range p.Targets {
			if tg.Expr != "" {
				rules = append(rules, rule{Record: fmt.Sprintf("panel_%d_target_%d", p.ID, i), Expr: vars.Replace(tg.Expr)})
			}
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries (panel_ID_target_N) as rules: promtool check rules: %v\n%s\n%s", err, out, b)
	}
}

// deployMetricName is a name of rockstream's metrics as the rules and the
// dashboard write it.
var deployMetricName = regexp.MustCompile(`rockstream_[a-z0-9_]+`)

// servedMetricTypes maps each metric that a /metrics text declares (its
// "# TYPE name type" line) to its type.
func servedMetricTypes(text string) map[string]string {
	types := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}

// missingDeployMetrics returns the rockstream_ metrics that the rules
// (rules.yml) or the dashboard (rockstream.json) name and that no daemon
// serves: served maps a daemon ("archive", "standby") to the text of its
// /metrics. A histogram's series (name_bucket, name_sum, name_count) count
// as served with the histogram (a summary's name_sum and name_count with
// the summary). Each entry is "name (the files that name it)", sorted.
func missingDeployMetrics(served map[string]string) ([]string, error) {
	types := map[string]string{}
	for _, text := range served {
		for name, typ := range servedMetricTypes(text) {
			types[name] = typ
		}
	}
	isServed := func(name string) bool {
		if _, ok := types[name]; ok {
			return true
		}
		// A counter's _total as OpenMetrics declares it (# TYPE name counter).
		for suffix, kinds := range map[string][]string{"_bucket": {"histogram"}, "_sum": {"histogram", "summary"},
			"_count": {"histogram", "summary"}, "_total": {"counter"}} {
			if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(kinds, types[base]) {
				return true
			}
		}
		return false
	}
	where := map[string][]string{}
	for _, file := range []string{deployRules, deployDashboard} {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		for _, name := range deployMetricName.FindAllString(string(b), -1) {
			if !isServed(name) && !slices.Contains(where[name], filepath.Base(file)) {
				where[name] = append(where[name], filepath.Base(file))
			}
		}
	}
	var missing []string
	for name, files := range where {
		missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(files, ", ")))
	}
	slices.Sort(missing)
	return missing, nil
}

// checkDeployMetricNames fails t when the rules or the dashboard name a
// rockstream_ metric that neither daemon serves. served maps a daemon
// ("archive", "standby") to the text of its /metrics.
func checkDeployMetricNames(t *testing.T, served map[string]string) {
	t.Helper()
	missing, err := missingDeployMetrics(served)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		daemons := make([]string, 0, len(served))
		for d := range served {
			daemons = append(daemons, d)
		}
		slices.Sort(daemons)
		t.Errorf("deploy/ names metrics that no daemon (%s) serves on /metrics:\n  %s", strings.Join(daemons, ", "), strings.Join(missing, "\n  "))
	}
}

// fakeMetricsText is a /metrics text declaring the named metrics with the
// given types ("counter" when not said).
func fakeMetricsText(metrics map[string]string) string {
	var b strings.Builder
	for name, typ := range metrics {
		fmt.Fprintf(&b, "# HELP %s A metric.\n# TYPE %s %s\n", name, name, typ)
		switch typ {
		case "histogram":
			fmt.Fprintf(&b, "%s_bucket{le=\"+Inf\"} 0\n%s_sum 0\n%s_count 0\n", name, name, name)
		default:
			fmt.Fprintf(&b, "%s 0\n", name)
		}
	}
	return b.String()
}

// TestDeployMetricNames: missingDeployMetrics finds nothing missing when
// the daemons serve the metrics they are meant to serve, and names a metric
// (and a histogram's series) that they do not.
func TestDeployMetricNames(t *testing.T) {
	archive := map[string]string{"rockstream_build_info": "gauge"}
	for _, c := range []string{"segments", "batches", "wal_bytes", "uploaded_bytes", "upload_retries", "bases", "holes",
		"prunes", "prune_errors", "pruned_objects", "pruned_bytes"} {
		archive["rockstream_archive_"+c+"_total"] = "counter"
	}
	for _, g := range []string{"replay_needs", "last_sequence", "archived_sequence", "head_sequence", "head_known", "lag_sequences", "lag_bytes",
		"lag_seconds", "last_upload_timestamp_seconds", "last_base_timestamp_seconds"} {
		archive["rockstream_archive_"+g] = "gauge"
	}
	archive["rockstream_archive_upload_duration_seconds"] = "histogram"
	standby := map[string]string{"rockstream_build_info": "gauge", "rockstream_standby_apply_delay_seconds": "histogram"}
	for _, g := range []string{"applied_sequence", "archive_head_sequence", "lag_sequences", "lag_seconds", "timeline", "timeline_ended", "state"} {
		standby["rockstream_standby_"+g] = "gauge"
	}
	for _, c := range []string{"batches_applied", "segments_applied", "errors"} {
		standby["rockstream_standby_"+c+"_total"] = "counter"
	}
	served := map[string]string{"archive": fakeMetricsText(archive), "standby": fakeMetricsText(standby)}
	if missing, err := missingDeployMetrics(served); err != nil || len(missing) > 0 {
		t.Fatalf("with every metric served: missing %q, %v", missing, err)
	}
	checkDeployMetricNames(t, served)

	delete(standby, "rockstream_standby_state")
	standby["rockstream_standby_apply_delay_seconds"] = "gauge" // not a histogram: its _bucket is not served
	delete(archive, "rockstream_archive_lag_seconds")
	served = map[string]string{"archive": fakeMetricsText(archive), "standby": fakeMetricsText(standby)}
	missing, err := missingDeployMetrics(served)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"rockstream_archive_lag_seconds (rules.yml, rockstream.json)",
		"rockstream_standby_apply_delay_seconds_bucket (rockstream.json)",
		"rockstream_standby_state (rules.yml, rockstream.json)",
	}
	if !slices.Equal(missing, want) {
		t.Errorf("missing:\n  %s\nwant:\n  %s", strings.Join(missing, "\n  "), strings.Join(want, "\n  "))
	}
}
