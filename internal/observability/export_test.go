package observability

import "time"

// SetCheckTimeout shortens the readiness check timeout for tests.
func SetCheckTimeout(p *Probes, d time.Duration) { p.timeout = d }
