package gateway

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratadev/strata/internal/balance"
)

// instance is one upstream instance of a pool, with its load, its health
// as the active checks see it, and its ejection state as the passive
// checks see it.
type instance struct {
	url   *url.URL
	key   string // host:port: what consistent hashing places
	load  balance.Load
	conns conns // keep-alive connections of the direct path

	healthy      atomic.Bool  // the last checks passed (unhealthy until the first does)
	failedChecks int          // owned by the check loop
	failures     atomic.Int32 // requests failed in a row
	ejectedUntil atomic.Int64 // unix ns; 0 when not ejected
	ejections    atomic.Int32 // ejections in a row, for the back-off
	trial        atomic.Bool  // readmitted after an ejection and not yet succeeded
}

func (i *instance) Key() string         { return i.key }
func (i *instance) Load() *balance.Load { return &i.load }

func (i *instance) ejected(now time.Time) bool {
	until := i.ejectedUntil.Load()
	return until != 0 && now.UnixNano() < until
}

// pool is the instances serving one module, balanced by a policy.
type pool struct {
	name    string
	cfg     Config
	policy  balance.Policy[*instance]
	checker *http.Client
	metrics *Metrics
	stats   *poolMetrics // the pool's children of metrics, for the request path
	log     *slog.Logger

	mu        sync.Mutex
	instances map[string]*instance // by URL
	stopCheck map[string]context.CancelFunc
	ctx       context.Context // the pool's life; checks run under it
	usable    atomic.Int32
}

func newPool(ctx context.Context, name string, cfg Config, checker *http.Client, m *Metrics, log *slog.Logger) *pool {
	policyName := cfg.Policies[name]
	if policyName == "" {
		policyName = balance.LeastRequest
	}
	policy, err := balance.New[*instance](policyName)
	if err != nil { // Config.Validate refused it
		policy = balance.NewLeastRequest[*instance]()
	}
	return &pool{name: name, cfg: cfg, policy: policy, checker: checker, metrics: m, log: log,
		instances: map[string]*instance{}, stopCheck: map[string]context.CancelFunc{}, ctx: ctx}
}

// set makes urls the pool's instances: new ones start unhealthy and are
// checked at once, known ones keep their state, missing ones leave.
func (p *pool) set(urls []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[string]bool{}
	for _, raw := range urls {
		keep[raw] = true
		if _, ok := p.instances[raw]; ok {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			p.log.Warn("gateway: ignoring a malformed instance URL", "pool", p.name, "url", raw)
			continue
		}
		in := &instance{url: u, key: u.Host, conns: conns{max: p.cfg.MaxIdlePerInstance}}
		p.instances[raw] = in
		ctx, cancel := context.WithCancel(p.ctx)
		p.stopCheck[raw] = cancel
		go p.checkLoop(ctx, in)
		p.log.Info("gateway: instance joined", "pool", p.name, "url", raw)
	}
	for raw := range p.instances {
		if !keep[raw] {
			p.stopCheck[raw]()
			p.instances[raw].conns.closeIdle(true)
			delete(p.stopCheck, raw)
			delete(p.instances, raw)
			p.log.Info("gateway: instance left", "pool", p.name, "url", raw)
		}
	}
	p.refreshLocked()
}

// refresh hands the policy the instances that may take requests: healthy
// and not ejected. When ejection would leave none, the healthy ones are
// used all the same (passive checks must not take a whole pool down;
// active checks may, since they see each instance answer).
func (p *pool) refresh() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshLocked()
}

func (p *pool) refreshLocked() {
	now := time.Now()
	var healthy, usable []*instance
	for _, in := range p.instances {
		if !in.healthy.Load() {
			continue
		}
		healthy = append(healthy, in)
		if !in.ejected(now) {
			usable = append(usable, in)
		}
	}
	if len(usable) == 0 {
		usable = healthy
	}
	slices.SortFunc(usable, func(a, b *instance) int { return cmp.Compare(a.url.String(), b.url.String()) })
	p.policy.Update(usable)
	p.usable.Store(int32(len(usable)))
	if p.metrics != nil {
		p.metrics.instances.WithLabelValues(p.name, "known").Set(float64(len(p.instances)))
		p.metrics.instances.WithLabelValues(p.name, "healthy").Set(float64(len(healthy)))
		p.metrics.instances.WithLabelValues(p.name, "usable").Set(float64(len(usable)))
	}
}

// checkLoop checks in's /readyz at once and then every HealthInterval,
// and readmits it when an ejection ends, until ctx ends.
func (p *pool) checkLoop(ctx context.Context, in *instance) {
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		ok := p.check(ctx, in)
		if ctx.Err() != nil {
			return
		}
		p.observe(in, ok)
		in.conns.expire(time.Now())
		if until := in.ejectedUntil.Load(); until != 0 && time.Now().UnixNano() >= until {
			p.readmit(in)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check asks the instance whether it is ready.
func (p *pool) check(ctx context.Context, in *instance) bool {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.HealthTimeout)
	defer cancel()
	// scope=instance: whether the instance takes requests, without the
	// checks of dependencies every instance shares — one database down
	// must not take every instance out at once (its requests then fail
	// fast behind the database's breaker, and ours).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.url.String()+"/readyz?scope=instance", nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "strata-gateway")
	resp, err := p.checker.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// observe records a check's outcome: UnhealthyAfter failures in a row take
// the instance out, one pass brings it back.
func (p *pool) observe(in *instance, ok bool) {
	was := in.healthy.Load()
	if ok {
		in.failedChecks = 0
		if !was {
			in.healthy.Store(true)
			p.log.Info("gateway: instance healthy", "pool", p.name, "url", in.url.String())
			p.refresh()
		}
		return
	}
	in.failedChecks++
	if was && in.failedChecks >= p.cfg.UnhealthyAfter {
		in.healthy.Store(false)
		p.log.Warn("gateway: instance unhealthy", "pool", p.name, "url", in.url.String(), "failed_checks", in.failedChecks)
		p.refresh()
	}
}

// succeeded and failed are the passive checks: every proxied request
// reports its outcome. EjectAfter failures in a row eject the instance
// for EjectBase·2ⁿ (n ejections in a row, at most EjectMax); after it a
// trial request decides: success resets the back-off, failure ejects it
// again for twice as long.
func (p *pool) succeeded(in *instance) {
	if in.failures.Load() != 0 {
		in.failures.Store(0)
	}
	if in.trial.Load() && in.trial.CompareAndSwap(true, false) {
		in.ejections.Store(0)
	}
}

func (p *pool) failed(in *instance) {
	n := in.failures.Add(1)
	if in.trial.Load() {
		n = int32(p.cfg.EjectAfter) // a failed trial ejects at once
	}
	if n < int32(p.cfg.EjectAfter) {
		return
	}
	k := in.ejections.Load()
	d := p.cfg.EjectBase
	for ; k > 0 && d < p.cfg.EjectMax; k-- {
		d *= 2
	}
	d = min(d, p.cfg.EjectMax)
	if !in.ejectedUntil.CompareAndSwap(0, time.Now().Add(d).UnixNano()) {
		return // ejected already, by a request failing at the same time
	}
	in.ejections.Add(1)
	in.trial.Store(false)
	in.failures.Store(0)
	if p.metrics != nil {
		p.metrics.ejections.WithLabelValues(p.name).Inc()
	}
	p.log.Warn("gateway: instance ejected", "pool", p.name, "url", in.url.String(), "for", d.String())
	p.refresh()
	time.AfterFunc(d, func() { p.readmit(in) })
}

// readmit ends an ejection whose time is up; the next request is a trial.
func (p *pool) readmit(in *instance) {
	until := in.ejectedUntil.Load()
	if until == 0 || time.Now().UnixNano() < until || !in.ejectedUntil.CompareAndSwap(until, 0) {
		return
	}
	in.trial.Store(true)
	p.log.Info("gateway: instance readmitted", "pool", p.name, "url", in.url.String())
	p.refresh()
}

// closeConns closes the instances' keep-alive connections of the direct
// path, for good.
func (p *pool) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.instances {
		in.conns.closeIdle(true)
	}
}

// pick chooses an instance for a request, avoiding those it already tried.
func (p *pool) pick(key string, tried []*instance) (*instance, bool) {
	if len(tried) == 0 {
		return p.policy.Pick(key, nil)
	}
	return p.policy.Pick(key, func(in *instance) bool { return slices.Contains(tried, in) })
}

// snapshot describes the pool's instances, for the status endpoint and tests.
func (p *pool) snapshot() []InstanceStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	out := make([]InstanceStatus, 0, len(p.instances))
	for raw, in := range p.instances {
		out = append(out, InstanceStatus{URL: raw, Healthy: in.healthy.Load(), Ejected: in.ejected(now),
			InFlight: in.load.InFlight(), Latency: in.load.Latency()})
	}
	slices.SortFunc(out, func(a, b InstanceStatus) int { return cmp.Compare(a.URL, b.URL) })
	return out
}

// InstanceStatus is an instance as the gateway sees it.
type InstanceStatus struct {
	URL      string        `json:"url"`
	Healthy  bool          `json:"healthy"`
	Ejected  bool          `json:"ejected"`
	InFlight int64         `json:"in_flight"`
	Latency  time.Duration `json:"latency_ns"`
}
