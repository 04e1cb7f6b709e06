package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stratadev/strata/internal/config"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// run is the whole program behind main: it parses args, and runs the
// command they name until ctx ends. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Strata: a horizontally scalable backend for apps that sell digital content",
		Long:          "Strata runs accounts, payments and content delivery in one binary: all roles in one process on\nembedded defaults (strata serve), or any subset of roles per instance on distributed engines.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetContext(ctx)

	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			goVersion := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
			}
			fmt.Fprintf(cmd.OutOrStdout(), "strata %s (%s)\n", version, goVersion)
			return nil
		},
	})

	var s settings
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run Strata (all roles in one process by default)",
		Long: "Run Strata. With no settings it runs every role in one process on embedded defaults: SQLite under\n" +
			"--data-dir, an embedded NATS JetStream server, the HTTP API on --http-addr.\n\n" +
			"Every flag can also be set as a STRATA_* environment variable (--http-addr is STRATA_HTTP_ADDR)\n" +
			"or in the YAML file named by --config. Flags win over the environment, which wins over the file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(cmd.Flags(), getenv, &s); err != nil {
				return err
			}
			return serveCmd(cmd.Context(), &s, stdout, stderr)
		},
	}
	s.registerFlags(serve.Flags())
	root.AddCommand(serve)
	root.AddCommand(usersCommand(getenv, stdin, stdout, stderr))
	root.AddCommand(ledgerCommand(getenv, stdout))
	root.AddCommand(shardsCommand(getenv, stdout))
	root.AddCommand(clusterCommand(stdout))
	root.AddCommand(natsCommand(stdout, stderr))
	root.AddCommand(&cobra.Command{
		Use:    "config-docs",
		Short:  "Print the settings table of docs/configuration.md",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), config.Markdown(serve.Flags()))
			return nil
		},
	})
	return root.Execute()
}

// load layers the environment and config file under the flags and
// validates everything before any connection opens.
func load(fs *pflag.FlagSet, getenv func(string) string, s *settings) error {
	if err := config.Apply(fs, getenv); err != nil {
		return err
	}
	return s.validate()
}

func newFlagSet() *pflag.FlagSet { return pflag.NewFlagSet("strata", pflag.ContinueOnError) }
