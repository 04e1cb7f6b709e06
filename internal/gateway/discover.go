package gateway

import (
	"context"
	"slices"
	"sync"

	"github.com/stratadev/strata/internal/discovery"
)

// Watch feeds the pools from sources until ctx ends: the latest set of
// every source, merged, each instance going to the pools of the roles it
// serves. It returns the first error of a source that cannot run.
func (g *Gateway) Watch(ctx context.Context, sources ...discovery.Source) error {
	var mu sync.Mutex
	latest := make([][]discovery.Instance, len(sources))
	apply := func() {
		byPool := map[string][]string{}
		for _, set := range latest {
			for _, in := range set {
				for _, pool := range Pools {
					if slices.Contains(in.Roles, pool) && !slices.Contains(byPool[pool], in.URL) {
						byPool[pool] = append(byPool[pool], in.URL)
					}
				}
			}
		}
		for _, pool := range Pools {
			g.SetInstances(pool, byPool[pool])
		}
	}
	errs := make(chan error, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Go(func() {
			errs <- src.Run(ctx, func(set []discovery.Instance) {
				mu.Lock()
				defer mu.Unlock()
				latest[i] = set
				apply()
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
