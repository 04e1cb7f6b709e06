// Package ratelimit limits how often something may happen, across every
// instance of a deployment, with state in Redis.
//
// GCRA, the generic cell rate algorithm, keeps one timestamp per limited
// key: its theoretical arrival time (TAT), the moment the key would be
// idle again had every event it was allowed been spaced exactly one
// emission interval T = 1/rate apart. An event at time now is allowed when
// the TAT is at most burst·T − T ahead of now (so an idle key takes burst
// events at once, then one every T), and moves the TAT on by T; a refused
// event changes nothing. Compared with a counter per fixed window, GCRA is
// smooth — capacity comes back continuously, one event every T, instead of
// all at once when a window turns over — and has no window boundary
// through which a client can get twice its limit (a full window's worth
// just before the boundary and another just after). It needs no
// background refill either: the state is one number, read and written in
// one step, and it expires once the TAT has passed, so an idle key costs
// nothing.
//
// The TAT lives in Redis and is read, checked and updated by one Lua
// script, atomically, taking the time from Redis itself (TIME), so
// instances whose clocks disagree still agree on the limit. That is what
// makes the gateway's per-client limits hold for a deployment as a whole:
// a client that spreads its requests over every gateway instance gets the
// same budget as one that talks to a single instance, instead of one
// budget per instance.
//
// When Redis cannot answer, Allow returns an error and the caller decides
// whether to let the request through (fail open) or not.
package ratelimit
