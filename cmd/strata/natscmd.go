package main

import (
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/stratadev/strata/internal/observability"
	"github.com/stratadev/strata/internal/queue"
)

// natsCommand runs a standalone NATS JetStream server: the queue of a
// development cluster (strata cluster up), reachable over TCP.
func natsCommand(stdout, stderr io.Writer) *cobra.Command {
	var listen, storeDir string
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Run a standalone NATS JetStream server (for development clusters; production uses a NATS cluster)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, portStr, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			port, err := strconv.Atoi(portStr)
			if err != nil {
				return fmt.Errorf("listen: bad port %q", portStr)
			}
			logger, err := observability.NewLogger(stderr, "text", "info")
			if err != nil {
				return err
			}
			srv, err := queue.StartServer(queue.ServerConfig{StoreDir: storeDir, Listen: true, Host: host, Port: port}, logger)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "strata: NATS JetStream on %s, store in %s\n", srv.ClientURL(), storeDir)
			<-cmd.Context().Done()
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:4222", "host:port to accept clients on")
	cmd.Flags().StringVar(&storeDir, "store-dir", "./strata-nats", "where JetStream keeps its streams")
	return cmd
}
