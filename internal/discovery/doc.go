// Package discovery tells Strata's gateway and its service-to-service
// clients which instances serve which roles. A Source reports the whole
// current set of Instances (base URL and roles) each time it changes; the
// caller balances over it. Three Sources fit three kinds of fleet.
//
// # Static: a fixed fleet
//
// Static(instances...) reports a list given in configuration, once. Use it
// for a single binary, a fleet whose addresses are known when it is
// deployed (a few VMs behind fixed names), and tests. Instances that stop
// are not noticed: the client's own failures (retries, breakers) are.
//
// # DNS: Kubernetes headless services
//
// DNS(name, ...) resolves a name every interval and makes one instance of
// each A or AAAA address, all with the same roles. A Kubernetes headless
// service (clusterIP: None) answers with the addresses of its ready pods,
// so a deployment per role set and one DNS Source per service follows the
// cluster with no other moving part. Changes are seen within an interval
// plus the DNS server's cache time (CoreDNS answers cluster names with a
// 5 s TTL by default). A failed lookup, NXDOMAIN
// included, keeps the last good set, so a DNS outage or a service scaled
// to zero leaves the last instances in place rather than none.
//
// # NATS announcements: instances that come and go
//
// Where NATS is already there (the queue uses it), every instance runs an
// Announcer and every client a Watcher, on core NATS (no stream, nothing
// stored):
//
//	strata.discovery.heartbeat  JSON Instance, at start and every Interval
//	strata.discovery.query      empty; a Watcher asks at start
//	strata.discovery.leave      JSON Instance, once, when the Announcer stops
//
// A Watcher learns the current set within a round trip of starting (every
// Announcer answers its query with a heartbeat), sees a clean stop at once
// (the leave), and drops an instance that stopped without one (crash,
// partition, closed connection) once it has been silent for the TTL. Use
// it when instances come and go on their own (autoscaling, machines
// without stable names, several roles per instance decided at start) and
// for a fleet outside Kubernetes. Each instance announces itself, so its
// roles are the ones it really serves, and they may change between
// heartbeats. Keep the TTL at three or more Intervals (defaults 3 s and
// 1 s) so that one lost heartbeat does not drop a live instance. Instances
// are identified by URL: two announcing the same URL are one to a Watcher.
//
// NATS orders messages per publisher and subscription only, so a Watcher
// takes heartbeats and leaves through one subscription to
// strata.discovery.*; where NATS permissions are set, a watcher needs to
// subscribe to that wildcard and publish to the query subject, and an
// announcer to publish to heartbeat and leave and subscribe to the query.
//
// # Sets
//
// Every set passed to an update is sorted by URL, holds each URL once,
// lists each instance's roles sorted without repeats, and is freshly
// allocated. A URL is a base URL ("http://10.0.0.7:8080", no trailing
// slash); an announcement with any other kind of URL, or not JSON, is
// ignored and logged at debug.
package discovery
