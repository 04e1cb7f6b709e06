package strata_test

import (
	"testing"

	"github.com/stratadev/strata"
	"github.com/stretchr/testify/require"
)

func TestRequired(t *testing.T) {
	t.Parallel()
	require.NoError(t, strata.Required("a", "x", "b", "y"))
	err := strata.Required("a", "", "b", "y", "c", "")
	var e *strata.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, strata.CodeInvalid, e.Code)
	require.Equal(t, []strata.FieldError{{Field: "a", Message: "is required"}, {Field: "c", Message: "is required"}}, e.Fields)
}
