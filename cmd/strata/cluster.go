package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratadev/strata/internal/gateway"
)

// clusterState is what `strata cluster up` started, kept in
// <dir>/cluster.json so that down, kill, start and status find it.
type clusterState struct {
	Gateway   string         `json:"gateway"`
	NATS      string         `json:"nats"`
	Processes []*clusterProc `json:"processes"`
}

// clusterProc is one process of the cluster and how to start it again.
type clusterProc struct {
	Name string `json:"name"` // nats, api-1, worker-1, gateway
	PID  int    `json:"pid"`
	// Started is the process's start time in clock ticks since boot
	// (/proc/<pid>/stat), so that a PID reused by another process, after
	// a reboot say, is not taken for ours.
	Started uint64   `json:"started,omitempty"`
	URL     string   `json:"url,omitempty"` // its HTTP address (probes, API)
	Args    []string `json:"args"`
	Log     string   `json:"log"`
}

func clusterCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a split deployment on this machine, for development and demos",
		Long: "strata cluster up starts a split deployment on loopback: a NATS JetStream server in a process of its own,\n" +
			"API instances (auth, content and payments), workers and a gateway in front, each a separate strata process\n" +
			"announcing itself on NATS. Data is SQLite under --dir unless --postgres is given. Arguments after -- go to every\n" +
			"strata serve (e.g. -- --log-level debug). Logs and the state are kept in --dir; strata cluster down stops it all.",
	}
	var dir string
	cmd.PersistentFlags().StringVar(&dir, "dir", "./strata-cluster", "where the cluster keeps its state, logs and (SQLite) data")

	var api, workers, port int
	var postgres []string
	up := &cobra.Command{
		Use:   "up [-- serve flags...]",
		Short: "Start a split deployment on loopback and print its endpoints",
		RunE: func(cmd *cobra.Command, args []string) error {
			if api < 1 || workers < 0 {
				return fmt.Errorf("api: at least 1 instance; workers: not negative")
			}
			extra := args
			if i := cmd.ArgsLenAtDash(); i >= 0 {
				extra = args[i:]
			} else if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q: serve flags go after --", args)
			}
			return clusterUp(cmd.Context(), dir, api, workers, port, postgres, extra, stdout)
		},
	}
	up.Flags().IntVar(&api, "api", 2, "API instances (roles auth, content, payments)")
	up.Flags().IntVar(&workers, "workers", 1, "worker instances")
	up.Flags().IntVar(&port, "port", 8000, "the gateway's port on 127.0.0.1 (0 picks a free one)")
	up.Flags().StringSliceVar(&postgres, "postgres", nil, "PostgreSQL databases as name=DSN, passed to every instance (default: SQLite files under --dir)")

	down := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the cluster (gateway first, NATS last)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterDown(dir, stdout)
		},
	}
	var signal string
	kill := &cobra.Command{
		Use:   "kill NAME",
		Short: "Send a signal to one process of the cluster (a failure drill); strata cluster start NAME brings it back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, p, err := findProc(dir, args[0])
			if err != nil {
				return err
			}
			sig := syscall.SIGKILL
			switch strings.ToUpper(signal) {
			case "KILL":
			case "TERM":
				sig = syscall.SIGTERM
			default:
				return fmt.Errorf("signal: KILL or TERM, got %q", signal)
			}
			if err := syscall.Kill(p.PID, sig); err != nil {
				return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
			}
			fmt.Fprintf(stdout, "sent SIG%s to %s (pid %d)\n", strings.ToUpper(signal), p.Name, p.PID)
			return nil
		},
	}
	kill.Flags().StringVar(&signal, "signal", "KILL", "KILL or TERM")
	start := &cobra.Command{
		Use:   "start NAME",
		Short: "Start a process of the cluster again, with the arguments it first had, and wait until it is ready",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, p, err := findProc(dir, args[0])
			if err != nil {
				return err
			}
			if p.alive() {
				return fmt.Errorf("%s is running (pid %d)", p.Name, p.PID)
			}
			if err := startProc(cmd.Context(), p); err != nil {
				return err
			}
			if err := st.write(dir); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s started (pid %d)\n", p.Name, p.PID)
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List the cluster's processes and whether each is running and ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := readClusterState(dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "gateway %s   nats %s\n", st.Gateway, st.NATS)
			for _, p := range st.Processes {
				state := "stopped"
				if p.alive() {
					state = "running"
					if p.URL != "" && ready(cmd.Context(), p.URL) {
						state = "ready"
					}
				}
				fmt.Fprintf(stdout, "%-10s pid %-7d %-8s %s\n", p.Name, p.PID, state, p.URL)
			}
			return nil
		},
	}
	cmd.AddCommand(up, down, kill, start, status)
	return cmd
}

func clusterUp(ctx context.Context, dir string, api, workers, port int, postgres, extra []string, stdout io.Writer) error {
	if st, err := readClusterState(dir); err == nil {
		for _, p := range st.Processes {
			if p.alive() {
				return fmt.Errorf("a cluster is running from %s (%s, pid %d): strata cluster down --dir %s first", dir, p.Name, p.PID, dir)
			}
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the strata binary: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	st := &clusterState{}
	stopAll := func() { _ = stopProcs(st.Processes, 10*time.Second) }
	add := func(name string, url string, args ...string) (*clusterProc, error) {
		p := &clusterProc{Name: name, URL: url, Args: append([]string{bin}, args...), Log: filepath.Join(dir, "logs", name+".log")}
		st.Processes = append(st.Processes, p)
		if err := startProc(ctx, p); err != nil {
			stopAll()
			return nil, err
		}
		return p, st.write(dir)
	}

	natsPort, err := freePort()
	if err != nil {
		return err
	}
	st.NATS = "nats://127.0.0.1:" + strconv.Itoa(natsPort)
	if _, err := add("nats", "", "nats", "--listen", "127.0.0.1:"+strconv.Itoa(natsPort), "--store-dir", filepath.Join(dir, "nats")); err != nil {
		return err
	}
	if err := waitTCP(ctx, "127.0.0.1:"+strconv.Itoa(natsPort), 30*time.Second); err != nil {
		stopAll()
		return fmt.Errorf("nats: %w (see %s)", err, st.Processes[0].Log)
	}
	common := []string{"--nats-url", st.NATS, "--data-dir", filepath.Join(dir, "data"), "--log-format", "text", "--shutdown-delay", "500ms"}
	for _, pg := range postgres {
		common = append(common, "--postgres", pg)
	}
	serve := func(name, roles string, announce bool, more ...string) error {
		p, err := freePort()
		if err != nil {
			stopAll()
			return err
		}
		url := "http://127.0.0.1:" + strconv.Itoa(p)
		args := append([]string{"serve", "--roles", roles, "--http-addr", "127.0.0.1:" + strconv.Itoa(p)}, common...)
		if announce {
			args = append(args, "--announce-url", url, "--trust-proxy-headers")
		}
		args = append(append(args, more...), extra...)
		_, err = add(name, url, args...)
		return err
	}
	// The first API instance creates the deployment (master key,
	// migrations, shard map) before the others start.
	for i := 1; i <= api; i++ {
		if err := serve(fmt.Sprintf("api-%d", i), "auth,content,payments", true); err != nil {
			return err
		}
	}
	for i := 1; i <= workers; i++ {
		if err := serve(fmt.Sprintf("worker-%d", i), "worker", false); err != nil {
			return err
		}
	}
	gwAddr := "127.0.0.1:" + strconv.Itoa(port)
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		gwAddr = "127.0.0.1:" + strconv.Itoa(p)
	}
	st.Gateway = "http://" + gwAddr
	gwArgs := []string{"serve", "--roles", "gateway", "--http-addr", gwAddr, "--discovery", "nats", "--nats-url", st.NATS,
		"--log-format", "text", "--shutdown-delay", "500ms"}
	if _, err := add("gateway", st.Gateway, append(gwArgs, gatewayArgs(extra)...)...); err != nil {
		return err
	}
	if err := waitPools(ctx, st.Gateway, api, 30*time.Second); err != nil {
		stopAll()
		return err
	}
	fmt.Fprintf(stdout, "strata cluster up (state and logs in %s)\n", dir)
	fmt.Fprintf(stdout, "  gateway   %s\n", st.Gateway)
	fmt.Fprintf(stdout, "  nats      %s\n", st.NATS)
	for _, p := range st.Processes[1:] {
		if p.Name != "gateway" {
			fmt.Fprintf(stdout, "  %-9s %s (pid %d)\n", p.Name, p.URL, p.PID)
		}
	}
	fmt.Fprintf(stdout, "stop it with: strata cluster down --dir %s\n", dir)
	return nil
}

// gatewayArgs keeps the --gateway-* and logging flags of the extra serve
// arguments: the gateway takes no storage settings.
func gatewayArgs(extra []string) []string {
	var out []string
	for i := 0; i < len(extra); i++ {
		a := extra[i]
		if !strings.HasPrefix(a, "--gateway-") && !strings.HasPrefix(a, "--log-") {
			continue
		}
		out = append(out, a)
		if !strings.Contains(a, "=") && i+1 < len(extra) && !strings.HasPrefix(extra[i+1], "--") {
			out = append(out, extra[i+1])
			i++
		}
	}
	return out
}

func clusterDown(dir string, stdout io.Writer) error {
	st, err := readClusterState(dir)
	if err != nil {
		return err
	}
	// Gateway first (no new requests), then workers and API instances,
	// NATS last (they drain through it).
	order := make([]*clusterProc, 0, len(st.Processes))
	for i := len(st.Processes) - 1; i >= 0; i-- {
		order = append(order, st.Processes[i])
	}
	if err := stopProcs(order, 20*time.Second); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, "cluster.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	fmt.Fprintf(stdout, "strata cluster down: %d processes stopped\n", len(st.Processes))
	return nil
}

// stopProcs sends SIGTERM to each process in order, waiting for each to
// exit within grace before SIGKILL.
func stopProcs(procs []*clusterProc, grace time.Duration) error {
	for _, p := range procs {
		if p.PID == 0 || !p.alive() {
			continue
		}
		_ = syscall.Kill(p.PID, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if p.alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	return nil
}

// startProc starts p detached from this process (its own session, output
// appended to its log), and waits until it answers /readyz.
func startProc(ctx context.Context, p *clusterProc) error {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command(p.Args[0], p.Args[1:]...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = detached()
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.PID = c.Process.Pid
	if _, started, ok := procStat(p.PID); ok {
		p.Started = started
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }() // reaps it if it dies while this command runs
	if p.URL == "" {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for !ready(ctx, p.URL) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited during start; see %s:\n%s", p.Name, p.Log, tail(p.Log, 15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s; see %s", p.Name, p.Log)
		}
	}
	return nil
}

// waitPools waits until the gateway has api usable instances in every pool.
func waitPools(ctx context.Context, gw string, api int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var status map[string][]gateway.InstanceStatus
		resp, err := http.Get(gw + "/gateway/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&status)
			resp.Body.Close()
		}
		ok := err == nil
		for _, pool := range gateway.Pools {
			healthy := 0
			for _, in := range status[pool] {
				if in.Healthy {
					healthy++
				}
			}
			ok = ok && healthy >= api
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway did not see %d healthy instances in every pool within %s", api, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %s", addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// alive reports whether the process is running (not a zombie) and is
// still the one the cluster started.
func (p *clusterProc) alive() bool {
	if p.PID <= 0 || syscall.Kill(p.PID, 0) != nil {
		return false
	}
	state, started, ok := procStat(p.PID)
	if !ok {
		return true // no /proc: trust kill(0)
	}
	return state != 'Z' && (p.Started == 0 || started == p.Started)
}

// procStat reads a process's state and start time from /proc.
func procStat(pid int) (state byte, started uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// Fields follow the parenthesized command name: state is field 3,
	// starttime field 22.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 20 {
		return 0, 0, false
	}
	started, _ = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], started, true
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

func readClusterState(dir string) (*clusterState, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no cluster in %s (strata cluster up --dir %s starts one)", dir, dir)
	}
	if err != nil {
		return nil, err
	}
	var st clusterState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s/cluster.json: %w", dir, err)
	}
	return &st, nil
}

func (st *clusterState) write(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "cluster.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "cluster.json"))
}

// findProc reads the cluster's state and finds its process name.
func findProc(dir, name string) (*clusterState, *clusterProc, error) {
	st, err := readClusterState(dir)
	if err != nil {
		return nil, nil, err
	}
	p, err := st.find(name)
	return st, p, err
}

func (st *clusterState) find(name string) (*clusterProc, error) {
	var names []string
	for _, p := range st.Processes {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return nil, fmt.Errorf("no process %q in the cluster (it has %s)", name, strings.Join(names, ", "))
}
