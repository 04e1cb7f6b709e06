package httpx

import (
	"net/url"
	"strconv"

	"github.com/stratadev/strata"
)

// Limit reads the page size of a list from the query parameter "limit":
// def when absent, else an integer from 1 to max, or invalid naming
// "limit".
func Limit(q url.Values, def, max int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, strata.Invalid("limit", "must be an integer from 1 to "+strconv.Itoa(max))
	}
	return n, nil
}
