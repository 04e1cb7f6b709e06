package strata_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const modulePath = "github.com/stratadev/strata"

// modules are the business modules: each owns its tables, routes and
// events and reaches the others only through interfaces (STYLE.md rule 1).
var modules = []string{"auth", "payments", "content", "gateway", "worker"}

// moduleOf returns the module a package (path relative to the repository)
// belongs to, or "".
func moduleOf(rel string) string {
	for _, m := range modules {
		if rel == "internal/"+m || strings.HasPrefix(rel, "internal/"+m+"/") {
			return m
		}
	}
	return ""
}

// imports maps each package folder under dir to the repository packages
// its files (tests included) import.
func imports(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			if rel, ok := strings.CutPrefix(p, modulePath+"/"); ok {
				out[pkg] = append(out[pkg], rel)
			} else if p == modulePath {
				out[pkg] = append(out[pkg], ".")
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// violations applies STYLE.md rule 1 to an import graph whose package
// paths are relative to the repository.
func violations(graph map[string][]string) []string {
	var out []string
	for pkg, deps := range graph {
		from := moduleOf(pkg)
		for _, dep := range deps {
			to := moduleOf(dep)
			switch {
			case from != "" && to != "" && from != to:
				out = append(out, "module package "+pkg+" imports module package "+dep+": declare an interface and let cmd/strata pass the other module in")
			case from == "" && to != "":
				out = append(out, "building block "+pkg+" imports module package "+dep+": building blocks must not know the modules")
			}
		}
	}
	return out
}

func TestModulesDoNotImportEachOther(t *testing.T) {
	t.Parallel()
	for _, v := range violations(imports(t, "internal")) {
		t.Error(v)
	}
}

func TestRootPackageImportsNothingInternal(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, spec := range f.Imports {
			require.NotContains(t, spec.Path.Value, modulePath+"/internal", "%s: package strata is the shared vocabulary and imports nothing under internal/", e.Name())
		}
	}
}

// TestImportRuleDetectsViolations keeps the rule honest: it must flag a
// module importing another and a building block importing a module.
func TestImportRuleDetectsViolations(t *testing.T) {
	require.Equal(t, "auth", moduleOf("internal/auth/authsql"))
	require.Equal(t, "payments", moduleOf("internal/payments"))
	require.Equal(t, "", moduleOf("internal/authz"))
	require.Equal(t, "", moduleOf("internal/queue"))

	// A planted tree with one violation of each kind and one allowed import.
	dir := t.TempDir()
	write := func(rel, src string) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, rel), []byte(src), 0o644))
	}
	write("internal/payments/p.go", "package payments\nimport _ \""+modulePath+"/internal/auth\"\n")
	write("internal/queue/q.go", "package queue\nimport _ \""+modulePath+"/internal/content/contentsql\"\n")
	write("internal/auth/authsql/s.go", "package authsql\nimport _ \""+modulePath+"/internal/auth\"\n")
	t.Chdir(dir)
	got := violations(imports(t, "internal"))
	require.Len(t, got, 2, "%v", got)
	require.Contains(t, strings.Join(got, "\n"), "module package internal/payments imports module package internal/auth")
	require.Contains(t, strings.Join(got, "\n"), "building block internal/queue imports module package internal/content/contentsql")
}
