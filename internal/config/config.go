// Package config layers Strata's settings: command-line flags win over
// STRATA_* environment variables, which win over an optional YAML config
// file, which wins over the defaults each package registers with its
// flags. Every setting is a flag, so `strata serve --help` and
// docs/configuration.md list all of them with their defaults.
package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// EnvName returns the environment variable of a flag: STRATA_ and the
// flag name upper-cased with dashes as underscores (http-addr ->
// STRATA_HTTP_ADDR).
func EnvName(flag string) string {
	return "STRATA_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// Apply fills every flag of fs that was not set on the command line from
// the environment, then from the config file named by the flag "config"
// (or STRATA_CONFIG). Unknown keys in the file and malformed values are
// errors naming the setting.
func Apply(fs *pflag.FlagSet, getenv func(string) string) error {
	file := map[string]any{}
	path := ""
	if f := fs.Lookup("config"); f != nil {
		path = f.Value.String()
		if !f.Changed && getenv(EnvName("config")) != "" {
			path = getenv(EnvName("config"))
		}
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config: %s: %w", path, err)
		}
		var unknown []string
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("config: %s: unknown settings %s", path, strings.Join(unknown, ", "))
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := setValue(fs, f, v); e != nil {
				err = fmt.Errorf("%s (from %s): %w", f.Name, EnvName(f.Name), e)
			}
			return
		}
		if raw, ok := file[f.Name]; ok {
			if e := setValue(fs, f, fileValue(raw)); e != nil {
				err = fmt.Errorf("%s (from %s): %w", f.Name, path, e)
			}
		}
	})
	return err
}

func setValue(fs *pflag.FlagSet, f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.Replace(strings.Split(v, ","))
	}
	return fs.Set(f.Name, v)
}

func fileValue(raw any) string {
	switch v := raw.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// Markdown renders the settings of fs as a table: flag, environment
// variable, default and description.
func Markdown(fs *pflag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | description |\n|---|---|---|---|\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		def := f.DefValue
		if def == "" || def == "[]" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s |\n", f.Name, EnvName(f.Name), def, strings.ReplaceAll(f.Usage, "|", "\\|"))
	})
	return b.String()
}
