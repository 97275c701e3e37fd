// Command argocd-lua runs Argo CD resource customizations (health checks and resource actions)
// through Argo CD's own util/lua package, the way Argo CD runs them, and prints JSON.
//
// Scripts come either from files (--script, or a resource_customizations tree for `test`) or from
// an argocd-cm ConfigMap (--argocd-cm), read by Argo CD's own settings manager exactly as the API
// server and `argocd admin settings resource-overrides` read it. In ConfigMap mode the health
// check goes through gitops-engine's GetResourceHealth, as in the application controller.
//
//	argocd-lua health    (--script FILE [--open-libs] | --argocd-cm FILE) --obj FILE
//	argocd-lua discovery (--script FILE [--open-libs] | --argocd-cm FILE) --obj FILE
//	argocd-lua action    (--script FILE | --argocd-cm FILE --name ACTION) --obj FILE
//	argocd-lua test      [--argocd-cm FILE] DIR
//	argocd-lua version
//
// `test` walks DIR (a resource_customizations tree) and runs every health_test.yaml and
// actions/action_test.yaml case as argo-cd's util/lua/health_test.go and custom_actions_test.go
// do, but stricter: health cases run both with the standard libraries (as upstream tests them)
// and without (as argocd-cm scripts run), discovery results must match the expected list
// exactly, and action outputs must equal the expected object exactly. It prints one JSON report
// and exits 1 when any case fails.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"

	"github.com/argoproj/gitops-engine/pkg/health"
	jsonpatch "github.com/evanphx/json-patch"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
)

// argocdVersion is set at build time (-X main.argocdVersion=...).
var argocdVersion = "unknown"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua health|discovery|action|test|version [flags]")
		os.Exit(2)
	}
	// The settings manager logs its informers at info level; stderr is for errors only.
	log.SetLevel(log.WarnLevel)
	var out any
	var err error
	code := 0
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "health":
		out, err = healthCommand(args)
	case "discovery":
		out, err = discoveryCommand(args)
	case "action":
		out, err = actionCommand(args)
	case "test":
		var report testReport
		report, err = testCommand(args)
		out = report
		if report.Failed > 0 {
			code = 1
		}
	case "version":
		out = map[string]string{"argocd": argocdVersion}
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		os.Exit(1)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

type commonFlags struct {
	set      *flag.FlagSet
	script   string
	cm       string
	obj      string
	openLibs bool
}

func parseFlags(name string, args []string, extra func(*flag.FlagSet)) (*commonFlags, error) {
	f := &commonFlags{set: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.set.StringVar(&f.script, "script", "", "Lua script file")
	f.set.StringVar(&f.cm, "argocd-cm", "", "argocd-cm ConfigMap YAML holding the customizations")
	f.set.StringVar(&f.obj, "obj", "", "the Kubernetes object (YAML or JSON)")
	f.set.BoolVar(&f.openLibs, "open-libs", false, "open Lua's standard libraries (as for built-in scripts)")
	if extra != nil {
		extra(f.set)
	}
	if err := f.set.Parse(args); err != nil {
		return nil, err
	}
	if f.obj == "" || (f.script == "") == (f.cm == "") {
		return nil, fmt.Errorf("%s needs --obj and exactly one of --script or --argocd-cm", name)
	}
	return f, nil
}

func healthCommand(args []string) (*health.HealthStatus, error) {
	f, err := parseFlags("health", args, nil)
	if err != nil {
		return nil, err
	}
	obj, err := readObject(f.obj)
	if err != nil {
		return nil, err
	}
	if f.cm != "" {
		overrides, err := loadOverrides(f.cm)
		if err != nil {
			return nil, err
		}
		return cmHealth(obj, overrides)
	}
	script, err := os.ReadFile(f.script)
	if err != nil {
		return nil, err
	}
	return lua.VM{UseOpenLibs: f.openLibs}.ExecuteHealthLua(obj, string(script))
}

// cmHealth is the application controller's path: gitops-engine first (objects being deleted are
// "Pending deletion" before any script runs), then the argocd-cm override.
func cmHealth(obj *unstructured.Unstructured, overrides map[string]v1alpha1.ResourceOverride) (*health.HealthStatus, error) {
	status, err := health.GetResourceHealth(obj, lua.ResourceHealthOverrides(overrides))
	if err == nil && status == nil {
		err = fmt.Errorf("no health check is configured for %s", lua.GetConfigMapKey(obj.GroupVersionKind()))
	}
	return status, err
}

func discoveryCommand(args []string) ([]v1alpha1.ResourceAction, error) {
	f, err := parseFlags("discovery", args, nil)
	if err != nil {
		return nil, err
	}
	obj, err := readObject(f.obj)
	if err != nil {
		return nil, err
	}
	if f.cm != "" {
		overrides, err := loadOverrides(f.cm)
		if err != nil {
			return nil, err
		}
		return cmDiscovery(obj, overrides)
	}
	script, err := os.ReadFile(f.script)
	if err != nil {
		return nil, err
	}
	return sortedActions(lua.VM{UseOpenLibs: f.openLibs}.ExecuteResourceActionDiscovery(obj, []string{string(script)}))
}

// cmDiscovery is the API server's getAvailableActions.
func cmDiscovery(obj *unstructured.Unstructured, overrides map[string]v1alpha1.ResourceOverride) ([]v1alpha1.ResourceAction, error) {
	vm := lua.VM{ResourceOverrides: overrides}
	scripts, err := vm.GetResourceActionDiscovery(obj)
	if err != nil {
		return nil, err
	}
	if len(scripts) == 0 {
		return nil, fmt.Errorf("no actions are configured for %s", lua.GetConfigMapKey(obj.GroupVersionKind()))
	}
	return sortedActions(vm.ExecuteResourceActionDiscovery(obj, scripts))
}

func sortedActions(actions []v1alpha1.ResourceAction, err error) ([]v1alpha1.ResourceAction, error) {
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, err
}

// actionResult is one impacted resource, plus for a patch the JSON merge patch that the API server
// would send (RunResourceActionV2 -> patchResource: jsonpatch.CreateMergePatch(live, new)).
type actionResult struct {
	Operation string          `json:"operation"`
	Resource  map[string]any  `json:"resource"`
	Patch     json.RawMessage `json:"patch,omitempty"`
}

func actionCommand(args []string) ([]actionResult, error) {
	var name string
	f, err := parseFlags("action", args, func(set *flag.FlagSet) {
		set.StringVar(&name, "name", "", "action name (with --argocd-cm)")
	})
	if err != nil {
		return nil, err
	}
	obj, err := readObject(f.obj)
	if err != nil {
		return nil, err
	}
	var script string
	if f.cm != "" {
		overrides, err := loadOverrides(f.cm)
		if err != nil {
			return nil, err
		}
		definition, err := lua.VM{ResourceOverrides: overrides}.GetResourceAction(obj, name)
		if err != nil {
			return nil, err
		}
		script = definition.ActionLua
	} else {
		data, err := os.ReadFile(f.script)
		if err != nil {
			return nil, err
		}
		script = string(data)
	}
	// Actions always run without the standard libraries: the API server never opens them.
	impacted, err := lua.VM{}.ExecuteResourceAction(obj.DeepCopy(), script, nil)
	if err != nil {
		return nil, err
	}
	live, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	results := make([]actionResult, 0, len(impacted))
	for _, r := range impacted {
		result := actionResult{Operation: string(r.K8SOperation), Resource: r.UnstructuredObj.Object}
		if r.K8SOperation == lua.PatchOperation {
			updated, err := json.Marshal(r.UnstructuredObj)
			if err != nil {
				return nil, err
			}
			if result.Patch, err = jsonpatch.CreateMergePatch(live, updated); err != nil {
				return nil, err
			}
		}
		results = append(results, result)
	}
	return results, nil
}

func readObject(path string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	object := map[string]any{}
	if err := yaml.Unmarshal(data, &object); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &unstructured.Unstructured{Object: object}, nil
}

// loadOverrides reads resource overrides from an argocd-cm ConfigMap with Argo CD's settings
// manager over a fake clientset, as `argocd admin settings ... --argocd-cm-path` does.
func loadOverrides(path string) (map[string]v1alpha1.ResourceOverride, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict(data, cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cm.Kind != "ConfigMap" || cm.Name != "argocd-cm" {
		return nil, fmt.Errorf("%s: want the ConfigMap argocd-cm, got %s %q", path, cm.Kind, cm.Name)
	}
	meta := func(o metav1.Object) {
		o.SetNamespace("argocd")
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels["app.kubernetes.io/part-of"] = "argocd"
		o.SetLabels(labels)
	}
	meta(cm)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-secret"},
		Data:       map[string][]byte{"server.secretkey": []byte("test")},
	}
	meta(secret)
	manager := settings.NewSettingsManager(context.Background(), fake.NewClientset(cm, secret), "argocd")
	if err := manager.ResyncInformers(); err != nil {
		return nil, err
	}
	return manager.GetResourceOverrides()
}

// The test file formats, as in argo-cd's util/lua/health_test.go and custom_actions_test.go.
type healthTests struct {
	Tests []struct {
		InputPath    string              `json:"inputPath"`
		HealthStatus health.HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string                    `json:"inputPath"`
		Result    []v1alpha1.ResourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action               string `json:"action"`
		InputPath            string `json:"inputPath"`
		ExpectedOutputPath   string `json:"expectedOutputPath"`
		ExpectedErrorMessage string `json:"expectedErrorMessage"`
	} `json:"actionTests"`
}

type testCase struct {
	Customization string `json:"customization"` // <group>/<Kind>
	Kind          string `json:"kind"`          // health | discovery | action
	Action        string `json:"action,omitempty"`
	InputPath     string `json:"inputPath"`
	Mode          string `json:"mode"` // openLibs | restricted | argocd-cm
	Expected      any    `json:"expected"`
	Actual        any    `json:"actual"`
	Error         string `json:"error,omitempty"`
	Passed        bool   `json:"passed"`
}

type testReport struct {
	Argocd string     `json:"argocd"`
	Passed int        `json:"passed"`
	Failed int        `json:"failed"`
	Cases  []testCase `json:"cases"`
}

// runner runs one customization's cases; scripts come from the tree or, with overrides, from
// argocd-cm. Paths in health_test.yaml are relative to dir, those in action_test.yaml to dir/actions.
type runner struct {
	dir       string
	name      string
	overrides map[string]v1alpha1.ResourceOverride
}

func testCommand(args []string) (testReport, error) {
	set := flag.NewFlagSet("test", flag.ContinueOnError)
	cmPath := set.String("argocd-cm", "", "take the scripts from this argocd-cm ConfigMap instead of the tree")
	if err := set.Parse(args); err != nil {
		return testReport{}, err
	}
	if set.NArg() != 1 {
		return testReport{}, errors.New("test needs one resource_customizations directory")
	}
	root := set.Arg(0)
	var overrides map[string]v1alpha1.ResourceOverride
	if *cmPath != "" {
		var err error
		if overrides, err = loadOverrides(*cmPath); err != nil {
			return testReport{}, err
		}
	}
	report := testReport{Argocd: argocdVersion, Cases: []testCase{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := filepath.Base(path)
		if base != "health_test.yaml" && !(base == "action_test.yaml" && filepath.Base(filepath.Dir(path)) == "actions") {
			return nil
		}
		dir := filepath.Dir(path)
		if base == "action_test.yaml" {
			dir = filepath.Dir(dir)
		}
		name, err := filepath.Rel(root, dir)
		if err != nil {
			return err
		}
		r := runner{dir: dir, name: filepath.ToSlash(name), overrides: overrides}
		var cases []testCase
		if base == "health_test.yaml" {
			cases, err = r.healthCases()
		} else {
			cases, err = r.actionCases()
		}
		report.Cases = append(report.Cases, cases...)
		return err
	})
	if err != nil {
		return report, err
	}
	for _, c := range report.Cases {
		if c.Passed {
			report.Passed++
		} else {
			report.Failed++
		}
	}
	if len(report.Cases) == 0 {
		return report, fmt.Errorf("no health_test.yaml or actions/action_test.yaml under %s", root)
	}
	return report, nil
}

func readYAML(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// modes: with overrides, the argocd-cm path only; else the upstream harness's open libraries and
// the restricted sandbox argocd-cm scripts get.
func (r runner) modes(openLibsToo bool) []string {
	if r.overrides != nil {
		return []string{"argocd-cm"}
	}
	if openLibsToo {
		return []string{"openLibs", "restricted"}
	}
	return []string{"restricted"}
}

func (r runner) script(rel string) (string, error) {
	data, err := os.ReadFile(filepath.Join(r.dir, rel))
	return string(data), err
}

func (r runner) healthCases() ([]testCase, error) {
	var tests healthTests
	if err := readYAML(filepath.Join(r.dir, "health_test.yaml"), &tests); err != nil {
		return nil, err
	}
	script, err := r.script("health.lua")
	if err != nil && r.overrides == nil {
		return nil, err
	}
	var cases []testCase
	for _, t := range tests.Tests {
		for _, mode := range r.modes(true) {
			c := testCase{Customization: r.name, Kind: "health", InputPath: t.InputPath, Mode: mode, Expected: t.HealthStatus}
			obj, err := readObject(filepath.Join(r.dir, t.InputPath))
			var status *health.HealthStatus
			if err == nil {
				if mode == "argocd-cm" {
					status, err = cmHealth(obj, r.overrides)
				} else {
					status, err = lua.VM{UseOpenLibs: mode == "openLibs"}.ExecuteHealthLua(obj, script)
				}
			}
			if err != nil {
				c.Error = err.Error()
			} else {
				c.Actual = status
				c.Passed = reflect.DeepEqual(*status, t.HealthStatus)
			}
			cases = append(cases, c)
		}
	}
	return cases, nil
}

func (r runner) actionCases() ([]testCase, error) {
	var tests actionTests
	if err := readYAML(filepath.Join(r.dir, "actions", "action_test.yaml"), &tests); err != nil {
		return nil, err
	}
	var cases []testCase
	for _, t := range tests.DiscoveryTests {
		expected, _ := sortedActions(t.Result, nil)
		for _, mode := range r.modes(true) {
			c := testCase{Customization: r.name, Kind: "discovery", InputPath: t.InputPath, Mode: mode, Expected: expected}
			actual, err := r.discover(t.InputPath, mode)
			if err != nil {
				c.Error = err.Error()
			} else {
				c.Actual = actual
				c.Passed = reflect.DeepEqual(actual, expected)
			}
			cases = append(cases, c)
		}
	}
	for _, t := range tests.ActionTests {
		for _, mode := range r.modes(false) {
			c := testCase{Customization: r.name, Kind: "action", Action: t.Action, InputPath: t.InputPath, Mode: mode}
			r.runAction(&c, t.ExpectedOutputPath, t.ExpectedErrorMessage)
			cases = append(cases, c)
		}
	}
	return cases, nil
}

func (r runner) discover(inputPath, mode string) ([]v1alpha1.ResourceAction, error) {
	obj, err := readObject(filepath.Join(r.dir, "actions", inputPath))
	if err != nil {
		return nil, err
	}
	if mode == "argocd-cm" {
		return cmDiscovery(obj, r.overrides)
	}
	script, err := r.script(filepath.Join("actions", "discovery.lua"))
	if err != nil {
		return nil, err
	}
	return sortedActions(lua.VM{UseOpenLibs: mode == "openLibs"}.ExecuteResourceActionDiscovery(obj, []string{script}))
}

func (r runner) runAction(c *testCase, expectedPath, expectedError string) {
	fail := func(err error) { c.Error = err.Error() }
	obj, err := readObject(filepath.Join(r.dir, "actions", c.InputPath))
	if err != nil {
		fail(err)
		return
	}
	var script string
	if r.overrides != nil {
		definition, err := lua.VM{ResourceOverrides: r.overrides}.GetResourceAction(obj, c.Action)
		if err != nil {
			fail(err)
			return
		}
		script = definition.ActionLua
	} else if script, err = r.script(filepath.Join("actions", c.Action, "action.lua")); err != nil {
		fail(err)
		return
	}
	impacted, err := lua.VM{}.ExecuteResourceAction(obj, script, nil)
	if expectedError != "" {
		c.Expected = map[string]string{"error": expectedError}
		if err != nil {
			c.Actual = map[string]string{"error": err.Error()}
			c.Passed = err.Error() == expectedError
		} else {
			c.Actual = impactedObjects(impacted)
		}
		return
	}
	if err != nil {
		fail(err)
		return
	}
	expected, err := readObject(filepath.Join(r.dir, "actions", expectedPath))
	if err != nil {
		fail(err)
		return
	}
	want, got := normalise(expected.Object), impactedObjects(impacted)
	c.Expected, c.Actual = []any{want}, got
	c.Passed = len(impacted) == 1 && impacted[0].K8SOperation == lua.PatchOperation && reflect.DeepEqual(got[0], want)
}

func impactedObjects(impacted []lua.ImpactedResource) []any {
	objects := make([]any, 0, len(impacted))
	for _, r := range impacted {
		objects = append(objects, normalise(r.UnstructuredObj.Object))
	}
	return objects
}

// normalise round-trips through JSON so YAML integers and Lua's float64 numbers compare equal.
func normalise(object map[string]any) any {
	data, err := json.Marshal(object)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return map[string]string{"error": err.Error()}
	}
	return out
}
