package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/observability"
	"golang.org/x/term"
)

func usersCommand(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	users := &cobra.Command{Use: "users", Short: "Manage user accounts"}
	var s settings
	var email, name, role string
	create := &cobra.Command{
		Use:   "create --email E [--name N] [--role admin]",
		Short: "Create an account (e.g. the first admin)",
		Long: "Create an account with a verified email. The password is read from standard input when it is not\n" +
			"a terminal, or prompted for twice; it is never taken from the command line.\n" +
			"Takes the same storage settings as strata serve (--data-dir, --shards, --master-key...).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(cmd.Flags(), getenv, &s); err != nil {
				return err
			}
			if email == "" {
				return fmt.Errorf("email: is required")
			}
			r := strata.Role(role)
			if !r.Valid() {
				return fmt.Errorf("role: must be buyer, creator or admin")
			}
			plain, err := readPassword(stdin, stderr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := openStorage(ctx, &s, nil)
			if err != nil {
				return err
			}
			defer st.close()
			logger, _ := observability.NewLogger(stderr, s.logFormat, s.logLevel)
			svc, _, err := st.authService(&s, logger, nil)
			if err != nil {
				return err
			}
			u, err := svc.CreateUser(ctx, email, name, plain, []strata.Role{r})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created %s %s with role %s\n", u.ID, u.Email, r)
			return nil
		},
	}
	s.registerFlags(create.Flags())
	create.Flags().StringVar(&email, "email", "", "the account's email address")
	create.Flags().StringVar(&name, "name", "", "the account's display name (default: the email's local part)")
	create.Flags().StringVar(&role, "role", "admin", "the account's role: buyer, creator or admin")
	users.AddCommand(create)
	return users
}

// readPassword reads one line from stdin when it is not a terminal, or
// prompts twice without echo when it is.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(stderr, "Repeat password: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", fmt.Errorf("password: the two entries differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("password: standard input was empty")
	}
	return line, nil
}
