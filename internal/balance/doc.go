// Package balance holds the load-balancing policies the gateway and the
// service-to-service clients use to choose an instance for each request.
//
// A Policy balances over Targets: anything with a stable Key (its address)
// and a Load, the live count of requests in flight and a peak-EWMA of their
// latency that the caller feeds through Load.Start and Load.Done. Update
// replaces the set of usable targets; Pick chooses one, skipping those the
// caller rules out (already tried by this request, circuit open). Pick never
// locks and never allocates: Update swaps an immutable snapshot.
//
// The policies, by the names users give them (New):
//
//   - round-robin: each target in turn. Use it when targets are alike and
//     requests cost about the same; it ignores Load, so it keeps sending a
//     slow or failing instance its full share.
//   - least-request: power of two choices. Two random targets are compared
//     and the one with the lower (in-flight+1) × latency wins, so traffic
//     drains away from an instance that is slow, overloaded or failing fast
//     (a failure counts as a slow sample) while no instance is starved of
//     the samples that show it has recovered, because idle estimates decay.
//     The default for stateless services.
//   - consistent-hash: Maglev hashing of a request key (the item id, the
//     user id) so the same key keeps landing on the same target, which keeps
//     that target's caches warm. Adding or removing one of N targets moves
//     only about 1/N of the keys, and each target owns an almost equal share
//     of the key space. A skipped target's keys spread over the others
//     rather than piling onto one neighbour. It ignores Load: use it where
//     locality matters more than evening out load.
package balance
